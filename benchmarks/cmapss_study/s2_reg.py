"""Stage 2 regression screening: long windows + slope (eta=0.1)."""
from exp import *
import json, sys
NC = nonconstant(DF, ALL_SIGNALS)
S15 = [c for c in NC if c.startswith('s')]
S14 = [c for c in S15 if c != 's6']
P = dict(eta=0.1)
cfgs = [
 ('K S14 w10,30,60 mean,std,slope,trend10 +cycle', dict(signals=S14, windows=(10,30,60), stats=('mean','std','slope'), trend_window=10, cycle=True)),
 ('L S14 w30,60 mean,slope +cycle', dict(signals=S14, windows=(30,60), stats=('mean','slope'), cycle=True)),
 ('M S14 w10,30,60,100 mean,std,slope,trend10 +cycle', dict(signals=S14, windows=(10,30,60,100), stats=('mean','std','slope'), trend_window=10, cycle=True)),
 ('N S14 w10,30,60 mean,std,slope,trend10 no-cycle', dict(signals=S14, windows=(10,30,60), stats=('mean','std','slope'), trend_window=10, cycle=False)),
 ('O S14 w5,10,20,30,60 mean,std,slope,trend10 +cycle', dict(signals=S14, windows=(5,10,20,30,60), stats=('mean','std','slope'), trend_window=10, cycle=True)),
 ('Q S14 w10,30,60 mean,std +cycle (no slope)', dict(signals=S14, windows=(10,30,60), stats=('mean','std'), trend_window=10, cycle=True)),
 ('R S14 w10,30,60 mean,std,slope,trend10 +ewm60 +cycle', dict(signals=S14, windows=(10,30,60), stats=('mean','std','slope'), trend_window=10, ewm_spans=(60,), cycle=True)),
 ('S all24 w10,30,60 mean,std,slope,trend10 +cycle', dict(signals=ALL_SIGNALS, windows=(10,30,60), stats=('mean','std','slope'), trend_window=10, cycle=True)),
]
sel = sys.argv[1] if len(sys.argv) > 1 else None
out = []
for name, c in cfgs:
    if sel and not any(name.startswith(s + ' ') for s in sel.split(',')): continue
    F = build_features(DF, **c)
    r = run_reg(F, P, tag=name); r['cfg'] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()}
    out.append(r)
    json.dump(out, open(f'res_s2_reg_{sel or "all"}.json', 'w'), indent=1)
