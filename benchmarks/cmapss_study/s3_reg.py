"""Stage 3: regressor hyperparameters / row weighting on feature set L (S14, w30,60 mean+slope, +cycle)."""
from exp import *
import json, sys
NC = nonconstant(DF, ALL_SIGNALS)
S14 = [c for c in NC if c.startswith('s') and c != 's6']
F = build_features(DF, signals=S14, windows=(30,60), stats=('mean','slope'), cycle=True)
runs = [
 ('h1 d4 eta0.05 mcw5', dict(eta=0.05), {}),
 ('h2 d3 eta0.05 mcw5', dict(eta=0.05, max_depth=3), {}),
 ('h3 d6 eta0.05 mcw5', dict(eta=0.05, max_depth=6), {}),
 ('h4 d4 eta0.05 mcw20', dict(eta=0.05, min_child_weight=20), {}),
 ('h5 d4 eta0.05 mcw5 engine-equal weights', dict(eta=0.05), dict(wscheme='engine_equal')),
 ('h6 d4 eta0.05 mcw5 rows RUL<=200', dict(eta=0.05), dict(rows='rul<=200')),
 ('h7 d4 eta0.03 mcw5', dict(eta=0.03), {}),
]
sel = sys.argv[1] if len(sys.argv) > 1 else None
out = []
for name, p, kw in runs:
    if sel and name.split()[0] not in sel.split(','): continue
    r = run_reg(F, p, tag='L ' + name, **kw); out.append(r)
    json.dump(out, open(f'res_s3_reg_{sel or "all"}.json', 'w'), indent=1)
