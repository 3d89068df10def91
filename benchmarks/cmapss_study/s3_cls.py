"""Stage 3 classifier variants (eta=0.05)."""
from exp import *
import json, sys
NC = nonconstant(DF, ALL_SIGNALS)
S14 = [c for c in NC if c.startswith('s') and c != 's6']
FS = {'L': dict(signals=S14, windows=(30,60), stats=('mean','slope'), cycle=True),
      'K': dict(signals=S14, windows=(10,30,60), stats=('mean','std','slope'), trend_window=10, cycle=True)}
runs = [
 ('c1', 'L', dict(eta=0.05), dict(spw='auto')),
 ('c2', 'L', dict(eta=0.05), dict(spw=None)),
 ('c3', 'L', dict(eta=0.05), dict(spw='auto', drop_rul0=False)),
 ('c4', 'L', dict(eta=0.05), dict(spw='auto', thr_rows='cuts')),
 ('c5', 'K', dict(eta=0.05), dict(spw='auto')),
 ('c6', 'L', dict(eta=0.05, max_depth=3), dict(spw='auto')),
]
sel = sys.argv[1]
out = []
cache = {}
for name, fs, p, kw in runs:
    if name not in sel.split(','): continue
    if fs not in cache: cache[fs] = build_features(DF, **FS[fs])
    r = run_cls(cache[fs], p, tag=f'{name} {fs} {p} {kw}', **kw); out.append(r)
    json.dump(out, open(f'res_s3_cls_{sel}.json', 'w'), indent=1)
