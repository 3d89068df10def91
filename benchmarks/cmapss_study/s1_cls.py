"""Stage 1 classifier: threshold rules on a couple of feature sets (eta=0.1 screening)."""
from exp import *
import json, sys
NC = nonconstant(DF, ALL_SIGNALS)
S14 = [c for c in NC if c.startswith('s') and c != 's6']
cfgs = {
 'G': dict(signals=S14, windows=(5,10,20,30,60), stats=('mean','std'), trend_window=10, cycle=True),
 'H': dict(signals=S14, windows=(10,30), stats=('mean','std','slope'), trend_window=10, cycle=True),
}
out = []
for name in sys.argv[1].split(','):
    F = build_features(DF, **cfgs[name])
    out.append(run_cls(F, dict(eta=0.1), tag=name + ' eta0.1 spw=auto'))
    json.dump(out, open(f'res_s1_cls_{sys.argv[1]}.json', 'w'), indent=1)
