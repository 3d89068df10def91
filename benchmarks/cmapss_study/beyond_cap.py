"""Health beyond the cap: can the training engines' lifetimes say what a capped regressor cannot (how far from
failure an engine is when the model predicts at its cap)? Grouped 5-fold CV on the TRAINING engines only
(train_FD00x.txt; the test and RUL files are never opened), scored against the UNCAPPED remaining life at the
last cycle of random truncations of held-out engines.

The capped model is the product's features (fd002_cap.py's: regimes per fold, raw + rolling mean/slope over
30/60/100 cycles, the cycle count) and fixed XGBoost parameters, trained on min(RUL, cap). Its prediction p
at an engine of age t (cycles since its first reading) is then replaced, where p is within ``delta`` of the
cap, by a survival estimate from the fold's training engines' lifetimes L (all run to failure):
    mrl      E[L - t | L > t]              the mean residual life at age t, ignoring p
    lower    E[L - t | L > t + p]          p taken as a lower bound of the remaining life ("at least p")
blended linearly from weight 0 at p = cap - delta to 1 at p = cap. 'max' variants keep max(p, estimate).
Two truncation protocols: remaining life U{1..min(200, L-31)} (as fd002_cap.py / exp.py) and U{1..L-31}
(any cut with 31 cycles observed), so a rule that only fits one protocol shows.
Usage: python beyond_cap.py FD002 [fold_seed]     (PYTHONPATH=<repo>/functions:<repo>, nice, nthread=1)
"""
import os, sys, time, json
from pathlib import Path
import numpy as np, pandas as pd, xgboost as xgb

from cm import COLS, folds, make_cuts
from modelforge.domain.features import FeatureConfig
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.regimes import RegimeConfig, fit_regimes

ROOT = Path(__file__).resolve().parents[3] / 'shared' / 'datasets'
SETTINGS = ('setting1', 'setting2', 'setting3')
CAPS = [125, 150]
DELTAS = [0, 5, 10, 20, 30]
FEATURES = FeatureConfig(windows_minutes=(300, 600, 1000), statistics=('mean', 'slope'), trend_window_minutes=None)
PARAMS = dict(objective="reg:squarederror", eta=0.1, max_depth=5, subsample=0.8, colsample_bytree=0.8,
              min_child_weight=5, nthread=1, seed=0)


def load(subset):
    path = os.environ.get('CMAPSS_TRAIN', str(ROOT / f'cmapss-{subset.lower()}' / f'train_{subset}.txt'))
    df = pd.read_csv(path, sep=r'\s+', header=None, names=COLS).sort_values(['unit', 'cycle']).reset_index(drop=True)
    df['RUL'] = df.groupby('unit').cycle.transform('max') - df['cycle']
    df['timestamp'] = pd.Timestamp('2020-01-01', tz='UTC') + pd.to_timedelta(df['cycle'] * 10, unit='min')
    return df


def features(df, train_units, subset):
    sensors = [c for c in [f's{i}' for i in range(1, 22)] + ['cycle'] if df[c].std() > 1e-8]
    train = df[df.unit.isin(train_units)]
    regimes = fit_regimes([train], sensors, RegimeConfig(settings=SETTINGS, regimes='auto' if subset != 'FD001' else 'none'))
    recipe = FeatureRecipe(sensors=regimes.sensors if regimes is not None else tuple(sensors), features=FEATURES, regimes=regimes)
    blocks = [recipe.build(g)[0] for _, g in df.groupby('unit', sort=False)]
    return np.concatenate(blocks)


def residual(lifetimes, t, p):
    """E[L - t | L > t + p] over the lifetimes (p = 0: the mean residual life); no survivor: p itself."""
    L = np.sort(lifetimes)
    out = np.empty(len(t))
    for i, (a, b) in enumerate(zip(t, p)):
        alive = L[L > a + b]
        out[i] = alive.mean() - a if len(alive) else b
    return out


def rules(p, age, lifetimes, cap):
    est = {'mrl': residual(lifetimes, age, np.zeros_like(p)), 'lower': residual(lifetimes, age, p)}
    out = {'capped': p}
    for name, e in est.items():
        for d in DELTAS:
            w = np.ones_like(p) * (p >= cap - 1e-9) if d == 0 else np.clip((p - (cap - d)) / d, 0, 1)
            out[f'{name}_d{d}'] = (1 - w) * p + w * e
            out[f'{name}max_d{d}'] = (1 - w) * p + w * np.maximum(p, e)
    return out


def main(subset, seed):
    df = load(subset)
    units = sorted(df.unit.unique())
    life = df.groupby('unit').cycle.max()
    res = {}
    t0 = time.time()
    for k, test_units in enumerate(folds(units, 5, seed)):
        train_units = [u for u in units if u not in set(test_units)]
        X = features(df, train_units, subset)
        rng = np.random.RandomState(seed + k)
        inner = set(rng.choice(train_units, size=len(train_units) // 5, replace=False))
        fit_rows = np.flatnonzero(df.unit.isin([u for u in train_units if u not in inner]).to_numpy())
        val_rows = np.flatnonzero(df.unit.isin(list(inner)).to_numpy())
        cuts = {'max200': make_cuts(df, test_units, n_cuts=5, seed=seed + k),
                'any': make_cuts(df, test_units, n_cuts=5, seed=seed + k, max_rul=10 ** 6)}
        rul = df.RUL.to_numpy(float)
        lifetimes = life.loc[train_units].to_numpy(float)
        for cap in CAPS:
            y = np.minimum(rul, cap)
            booster = xgb.train(PARAMS, xgb.DMatrix(X[fit_rows], y[fit_rows]), 800,
                                evals=[(xgb.DMatrix(X[val_rows], y[val_rows]), 'val')], early_stopping_rounds=50, verbose_eval=False)
            for proto, c in cuts.items():
                p = booster.predict(xgb.DMatrix(X[c]), iteration_range=(0, booster.best_iteration + 1))
                age = df.cycle.to_numpy(float)[c]
                for name, pred in rules(p, age, lifetimes, cap).items():
                    d = pred - rul[c]
                    res.setdefault(f'{proto} cap{cap} {name}', []).append(float(np.sqrt(np.mean(d ** 2))))
        print(f'{subset} seed {seed} fold {k} done t={time.time() - t0:.0f}s', flush=True)
    print(f'SUMMARY {subset} seed {seed}: RMSE vs uncapped RUL, mean over 5 folds (worst fold) [folds]')
    for key, r in sorted(res.items(), key=lambda kv: (kv[0].split()[0], np.mean(kv[1]))):
        print(f'{key:32s} {np.mean(r):6.2f} ({np.max(r):6.2f}) {np.round(r, 2).tolist()}')
    Path(f'res_beyond_cap_{subset}_{seed}.json').write_text(json.dumps(res, indent=1))


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'FD002', int(sys.argv[2]) if len(sys.argv) > 2 else 42)
