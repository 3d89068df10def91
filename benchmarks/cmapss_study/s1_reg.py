"""Stage 1 regression screening (eta=0.1 for speed)."""
from exp import *
import json, sys
NC = nonconstant(DF, ALL_SIGNALS)            # drops setting3,s1,s5,s10,s16,s18,s19
S15 = [c for c in NC if c.startswith('s')]    # 15 sensors incl. s6 (2 distinct values)
S14 = [c for c in S15 if c != 's6']
print('nonconstant', NC)
P = dict(eta=0.1)
cfgs = [
 ('A all24 w5,10,20,30 mean,std,trend10', dict(signals=ALL_SIGNALS, windows=(5,10,20,30), stats=('mean','std'), trend_window=10)),
 ('B nonconst(17 incl settings1,2,s6) same', dict(signals=NC, windows=(5,10,20,30), stats=('mean','std'), trend_window=10)),
 ('C S14 same', dict(signals=S14, windows=(5,10,20,30), stats=('mean','std'), trend_window=10)),
 ('D S14 +cycle', dict(signals=S14, windows=(5,10,20,30), stats=('mean','std'), trend_window=10, cycle=True)),
 ('E S14 w10,30 +cycle', dict(signals=S14, windows=(10,30), stats=('mean','std'), trend_window=10, cycle=True)),
 ('F S14 w15,60 +cycle', dict(signals=S14, windows=(15,60), stats=('mean','std'), trend_window=15, cycle=True)),
 ('G S14 w5,10,20,30,60 +cycle', dict(signals=S14, windows=(5,10,20,30,60), stats=('mean','std'), trend_window=10, cycle=True)),
 ('H S14 w10,30 mean,std,slope +cycle', dict(signals=S14, windows=(10,30), stats=('mean','std','slope'), trend_window=10, cycle=True)),
 ('I S14 w10,30 mean,std +ewm10,30 +cycle', dict(signals=S14, windows=(10,30), stats=('mean','std'), trend_window=10, ewm_spans=(10,30), cycle=True)),
 ('J S14 w10,30 mean,std,min,max +cycle', dict(signals=S14, windows=(10,30), stats=('mean','std','min','max'), trend_window=10, cycle=True)),
]
sel = sys.argv[1] if len(sys.argv) > 1 else None
out = []
for name, c in cfgs:
    if sel and not any(name.startswith(s + ' ') for s in sel.split(',')): continue
    F = build_features(DF, **c)
    r = run_reg(F, P, tag=name); r['cfg'] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in c.items()}
    out.append(r)
    json.dump(out, open(f'res_s1_reg_{sel or "all"}.json', 'w'), indent=1)
