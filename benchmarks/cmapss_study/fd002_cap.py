"""FD002: which training cap of the health target (remaining life) generalizes, judged against the UNCAPPED
remaining life at simulated truncations of held-out TRAINING engines (grouped 5-fold CV, fold seed as given).
Only train_FD002.txt is read; the test and RUL files are never opened.

Features are the product's own (modelforge.domain.recipe / regimes): regimes fitted on the training folds'
settings (auto), each sensor standardized per regime, then raw + rolling mean and slope over 30/60/100 cycles,
and the cycle count (the importer keeps it as a column, so the product featurizes it too).
Usage: python fd002_cap.py [fold_seed]   (nice -n 19, nthread=1)
"""
import os, sys, time, json
from pathlib import Path
import numpy as np, pandas as pd, xgboost as xgb

from cm import COLS, folds, make_cuts
from modelforge.domain.features import FeatureConfig
from modelforge.domain.recipe import FeatureRecipe
from modelforge.domain.regimes import RegimeConfig, fit_regimes

DATA = os.environ.get('CMAPSS_TRAIN', str(Path(__file__).resolve().parents[3] / 'shared' / 'datasets' / 'cmapss-fd002' / 'train_FD002.txt'))
SETTINGS = ('setting1', 'setting2', 'setting3')
CAPS = [125, 150, 175, 200, None]
FEATURES = FeatureConfig(windows_minutes=(300, 600, 1000), statistics=('mean', 'slope'), trend_window_minutes=None)
PARAMS = dict(objective="reg:squarederror", eta=0.1, max_depth=5, subsample=0.8, colsample_bytree=0.8,
              min_child_weight=5, nthread=1, seed=0)


def load():
    df = pd.read_csv(DATA, sep=r'\s+', header=None, names=COLS).sort_values(['unit', 'cycle']).reset_index(drop=True)
    df['RUL'] = df.groupby('unit').cycle.transform('max') - df['cycle']
    df['timestamp'] = pd.Timestamp('2020-01-01', tz='UTC') + pd.to_timedelta(df['cycle'] * 10, unit='min')
    return df


def features(df, train_units):
    sensors = [c for c in [f's{i}' for i in range(1, 22)] + ['cycle'] if df[c].std() > 1e-8]
    train = df[df.unit.isin(train_units)]
    regimes = fit_regimes([train], sensors, RegimeConfig(settings=SETTINGS, regimes='auto'))
    recipe = FeatureRecipe(sensors=regimes.sensors, features=FEATURES, regimes=regimes)
    blocks = [recipe.build(g)[0] for _, g in df.groupby('unit', sort=False)]
    return np.concatenate(blocks), recipe


def main(seed):
    df = load()
    units = sorted(df.unit.unique())
    out = {str(c): [] for c in CAPS}
    t0 = time.time()
    for k, test_units in enumerate(folds(units, 5, seed)):
        train_units = [u for u in units if u not in set(test_units)]
        X, recipe = features(df, train_units)
        rng = np.random.RandomState(seed + k)
        inner = set(rng.choice(train_units, size=len(train_units) // 5, replace=False))
        fit_rows = np.flatnonzero(df.unit.isin([u for u in train_units if u not in inner]).to_numpy())
        val_rows = np.flatnonzero(df.unit.isin(list(inner)).to_numpy())
        cuts = make_cuts(df, test_units, n_cuts=5, seed=seed + k)
        rul = df.RUL.to_numpy(float)
        for cap in CAPS:
            y = rul if cap is None else np.minimum(rul, cap)
            dtr = xgb.DMatrix(X[fit_rows], y[fit_rows]); dva = xgb.DMatrix(X[val_rows], y[val_rows])
            booster = xgb.train(PARAMS, dtr, 800, evals=[(dva, 'val')], early_stopping_rounds=50, verbose_eval=False)
            pred = booster.predict(xgb.DMatrix(X[cuts]), iteration_range=(0, booster.best_iteration + 1))
            d = pred - rul[cuts]
            out[str(cap)].append(dict(rmse=float(np.sqrt(np.mean(d ** 2))),
                                      rmse_cap125=float(np.sqrt(np.mean((pred - np.minimum(rul[cuts], 125)) ** 2))),
                                      rmse_true_gt125=float(np.sqrt(np.mean(d[rul[cuts] > 125] ** 2))) if np.any(rul[cuts] > 125) else None,
                                      rounds=booster.best_iteration + 1))
            print(f'seed {seed} fold {k} cap {cap}: ' + json.dumps(out[str(cap)][-1]) + f'  t={time.time() - t0:.0f}s', flush=True)
    print('SUMMARY seed', seed, 'regimes', recipe.regimes.criterion)
    for cap, rows in out.items():
        r = np.array([x['rmse'] for x in rows])
        print(f'cap {cap}: rmse vs true RUL mean {r.mean():.2f} worst fold {r.max():.2f} folds {np.round(r, 2).tolist()}  '
              f'rmse vs cap125 mean {np.mean([x["rmse_cap125"] for x in rows]):.2f}')
    Path(f'res_fd002_cap_{seed}.json').write_text(json.dumps(out, indent=1))


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 42)
