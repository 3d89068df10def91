"""FD002 health: longer windows, caps between 125 and 175, and smaller trees, judged as fd002_cap.py judges
(grouped 5-fold CV on the TRAINING engines, train_FD002.txt only; RMSE against the UNCAPPED remaining life at
5 random truncations per held-out engine, remaining life U{1..min(200, L-31)}; 'any' = U{1..L-31} beside it).
Same features code (modelforge.domain.recipe/regimes, regimes auto fitted per fold) and inner early stopping.
Usage: python fd002_recipe.py [fold_seed]     (PYTHONPATH=<repo>/functions:<repo>, nice, nthread=1)
"""
import sys, time, json
from pathlib import Path
import numpy as np, xgboost as xgb

from cm import folds, make_cuts
from beyond_cap import load, SETTINGS
from modelforge.domain.features import FeatureConfig
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.regimes import RegimeConfig, fit_regimes

BASE = dict(objective="reg:squarederror", eta=0.1, max_depth=5, subsample=0.8, colsample_bytree=0.8,
            min_child_weight=5, nthread=1, seed=0)
RECIPES = {'w30-60-100': (300, 600, 1000), 'w30-60-100-200': (300, 600, 1000, 2000), 'w60-150': (600, 1500)}
VARIANTS = [  # (recipe, cap, params override)
    ('w30-60-100', 150, {}), ('w30-60-100', 140, {}), ('w30-60-100', 160, {}),
    ('w30-60-100', 150, dict(max_depth=3, eta=0.05, min_child_weight=20)),
    ('w30-60-100-200', 150, {}), ('w30-60-100-200', 140, {}), ('w60-150', 150, {}),
]


def main(seed):
    df = load('FD002')
    units = sorted(df.unit.unique())
    sensors = [c for c in [f's{i}' for i in range(1, 22)] + ['cycle'] if df[c].std() > 1e-8]
    res = {}
    t0 = time.time()
    rul = df.RUL.to_numpy(float)
    for k, test_units in enumerate(folds(units, 5, seed)):
        train_units = [u for u in units if u not in set(test_units)]
        regimes = fit_regimes([df[df.unit.isin(train_units)]], sensors, RegimeConfig(settings=SETTINGS, regimes='auto'))
        X = {}
        for name, windows in RECIPES.items():
            recipe = FeatureRecipe(sensors=regimes.sensors, regimes=regimes,
                                   features=FeatureConfig(windows_minutes=windows, statistics=('mean', 'slope'), trend_window_minutes=None))
            X[name] = np.concatenate([recipe.build(g)[0] for _, g in df.groupby('unit', sort=False)])
        rng = np.random.RandomState(seed + k)
        inner = set(rng.choice(train_units, size=len(train_units) // 5, replace=False))
        fit_rows = np.flatnonzero(df.unit.isin([u for u in train_units if u not in inner]).to_numpy())
        val_rows = np.flatnonzero(df.unit.isin(list(inner)).to_numpy())
        cuts = {'max200': make_cuts(df, test_units, n_cuts=5, seed=seed + k),
                'any': make_cuts(df, test_units, n_cuts=5, seed=seed + k, max_rul=10 ** 6)}
        for name, cap, over in VARIANTS:
            y = np.minimum(rul, cap)
            x = X[name]
            booster = xgb.train({**BASE, **over}, xgb.DMatrix(x[fit_rows], y[fit_rows]), 2000,
                                evals=[(xgb.DMatrix(x[val_rows], y[val_rows]), 'val')], early_stopping_rounds=50, verbose_eval=False)
            key = f'{name} cap{cap} {json.dumps(over, sort_keys=True)}'
            for proto, c in cuts.items():
                p = booster.predict(xgb.DMatrix(x[c]), iteration_range=(0, booster.best_iteration + 1))
                res.setdefault(f'{proto} | {key}', []).append(float(np.sqrt(np.mean((p - rul[c]) ** 2))))
        print(f'seed {seed} fold {k} done t={time.time() - t0:.0f}s', flush=True)
    print(f'SUMMARY FD002 seed {seed}: RMSE vs uncapped RUL, mean over 5 folds (worst fold) [folds]')
    for key, r in sorted(res.items(), key=lambda kv: (kv[0].split()[0], np.mean(kv[1]))):
        print(f'{key:80s} {np.mean(r):6.2f} ({np.max(r):6.2f}) {np.round(r, 2).tolist()}')
    Path(f'res_fd002_recipe_{seed}.json').write_text(json.dumps(res, indent=1))


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 42)
