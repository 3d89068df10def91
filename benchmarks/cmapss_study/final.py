"""Final check: recommended config vs. product-style baseline over 3 different engine partitions
(fold seeds 42, 7, 123; each with its own random cuts). Regressor + classifier."""
import exp, json, sys, numpy as np
from exp import *
NC = nonconstant(DF, ALL_SIGNALS)
S14 = [c for c in NC if c.startswith('s') and c != 's6']
CFG = {
 'REC': dict(signals=S14, windows=(30,60), stats=('mean','slope'), cycle=True),
 'L3': dict(signals=S14, windows=(20,40,80), stats=('mean','slope'), cycle=True),
 'L2': dict(signals=S14, windows=(30,60,100), stats=('mean','slope'), cycle=True),
 'K': dict(signals=S14, windows=(10,30,60), stats=('mean','std','slope'), trend_window=10, cycle=True),
 'BASE': dict(signals=ALL_SIGNALS, windows=(5,10,20,30), stats=('mean','std'), trend_window=10),
}
which = sys.argv[1]
F = build_features(DF, **CFG[which])
out = []
for seed in (42, 7, 123):
    exp.FOLDS = folds(UNITS, seed=seed)
    exp.CUTS = {i: make_cuts(DF, f, seed=seed) for i, f in enumerate(exp.FOLDS)}
    r = run_reg(F, dict(eta=0.05), tag=f'{which} seed{seed}')
    p = np.array(r['pred']); t = np.array(r['true'])
    for lim in (125, 150):
        m = t <= lim
        r[f'rmse_true<={lim}'] = float(np.sqrt(np.mean((p[m] - t[m]) ** 2)))
    print(f'   subsets: rmse(true<=125)={r["rmse_true<=125"]:.2f} rmse(true<=150)={r["rmse_true<=150"]:.2f}', flush=True)
    c = run_cls(F, dict(eta=0.05), spw='auto', tag=f'{which} seed{seed}')
    out.append(dict(seed=seed, reg=r, cls=c))
    json.dump(out, open(f'res_final_{which}.json', 'w'), indent=1)
