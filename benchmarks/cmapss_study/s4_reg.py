"""Stage 4: window variants around L (eta=0.05, d4, mcw5)."""
from exp import *
import json, sys
NC = nonconstant(DF, ALL_SIGNALS)
S14 = [c for c in NC if c.startswith('s') and c != 's6']
S15 = S14 + ['s6']
P = dict(eta=0.05)
cfgs = [
 ('L2 S14 w30,60,100 mean,slope +cycle', dict(signals=S14, windows=(30,60,100), stats=('mean','slope'), cycle=True)),
 ('L3 S14 w20,40,80 mean,slope +cycle', dict(signals=S14, windows=(20,40,80), stats=('mean','slope'), cycle=True)),
 ('L4 S14 w30,60 mean,std,slope +cycle', dict(signals=S14, windows=(30,60), stats=('mean','std','slope'), cycle=True)),
 ('L5 S14 w10,30,60 mean,slope +cycle', dict(signals=S14, windows=(10,30,60), stats=('mean','slope'), cycle=True)),
 ('L6 S15(+s6) w30,60 mean,slope +cycle', dict(signals=S15, windows=(30,60), stats=('mean','slope'), cycle=True)),
 ('L7 S14 w30,60 mean,slope no-cycle', dict(signals=S14, windows=(30,60), stats=('mean','slope'), cycle=False)),
]
sel = sys.argv[1] if len(sys.argv) > 1 else None
out = []
for name, c in cfgs:
    if sel and name.split()[0] not in sel.split(','): continue
    F = build_features(DF, **c)
    r = run_reg(F, P, tag=name); r['cfg'] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()}
    out.append(r)
    json.dump(out, open(f'res_s4_reg_{sel or "all"}.json', 'w'), indent=1)
