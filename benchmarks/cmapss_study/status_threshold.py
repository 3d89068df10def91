"""The status decision threshold: the pooled rule (highest recall at precision >= 0.96 on the inner validation
engines' rows) against the rule across parts (those engines dealt into 5 parts; every part at precision >= 0.96,
the worst part's recall maximized), as modelforge.domain.evaluation implements both; also 2 and 3 parts, and
the median of the 5 parts' own pooled-rule thresholds. Grouped 5-fold CV on the
TRAINING engines only (train_FD00x.txt; test and RUL files never opened); each fold's classifier ("fails within
30 cycles") is trained on its fit engines with early stopping on the inner validation engines, the threshold
chosen on those same validation engines by each rule, and the rules judged at the last cycle of 5 random
truncations per held-out engine (remaining life U{1..min(200, L-31)}), as the benchmark judges test engines.
Usage: python status_threshold.py FD002 [fold_seed]   (PYTHONPATH=<repo>/functions:<repo>, nice, nthread=1)
"""
import sys, time, json
from pathlib import Path
import numpy as np, xgboost as xgb

from cm import folds, make_cuts
from beyond_cap import load, features
from modelforge.domain.evaluation import choose_threshold, choose_threshold_across

PARAMS = dict(objective="binary:logistic", eval_metric="logloss", eta=0.1, max_depth=6, subsample=0.8,
              colsample_bytree=0.8, min_child_weight=1, nthread=1, seed=0)
FLOOR = 0.96
RULES = ('pooled', 'across2', 'across3', 'across5', 'median5')  # acrossN: the worst of N parts; median5: see below


def prf(truth, alarm):
    tp, fp, fn = np.sum(truth & alarm), np.sum(~truth & alarm), np.sum(truth & ~alarm)
    return dict(precision=float(tp / (tp + fp)) if tp + fp else 0.0, recall=float(tp / (tp + fn)) if tp + fn else 0.0,
                fp=int(fp), fn=int(fn), positives=int(truth.sum()))


def main(subset, seed):
    df = load(subset)
    units = sorted(df.unit.unique())
    rul = df.RUL.to_numpy(float)
    y = ((rul >= 1) & (rul <= 30)).astype(float)
    res = {name: [] for name in RULES}
    t0 = time.time()
    for k, test_units in enumerate(folds(units, 5, seed)):
        train_units = [u for u in units if u not in set(test_units)]
        X = features(df, train_units, subset)
        rng = np.random.RandomState(seed + k)
        inner = sorted(rng.choice(train_units, size=len(train_units) // 5, replace=False))
        fit_rows = np.flatnonzero(df.unit.isin([u for u in train_units if u not in set(inner)]).to_numpy())
        val_rows = np.flatnonzero(df.unit.isin(inner).to_numpy())
        spw = (y[fit_rows] == 0).sum() / max(y[fit_rows].sum(), 1)
        booster = xgb.train({**PARAMS, 'scale_pos_weight': spw}, xgb.DMatrix(X[fit_rows], y[fit_rows]), 400,
                            evals=[(xgb.DMatrix(X[val_rows], y[val_rows]), 'val')], early_stopping_rounds=20, verbose_eval=False)
        rounds = (0, booster.best_iteration + 1)
        sv = booster.predict(xgb.DMatrix(X[val_rows]), iteration_range=rounds)
        machines = df.unit.to_numpy()[val_rows]
        choices = {}
        for name in RULES:
            n = int(name[-1]) if name != 'pooled' else 1
            order = np.random.default_rng(2).permutation(len(inner))
            part_of = dict(zip(np.array(inner)[order], np.arange(len(inner)) % n))
            parts = np.array([part_of[m] for m in machines])
            if name.startswith('median'):  # each part's own pooled-rule threshold, their median
                choices[name] = float(np.median([choose_threshold(y[val_rows][parts == q], sv[parts == q], min_precision=FLOOR).threshold
                                                 for q in range(n)]))
            else:
                choices[name] = choose_threshold_across(y[val_rows], sv, parts, min_precision=FLOOR).threshold
        cuts = make_cuts(df, test_units, n_cuts=5, seed=seed + k)
        sc = booster.predict(xgb.DMatrix(X[cuts]), iteration_range=rounds)
        truth = rul[cuts] <= 30
        for name, threshold in choices.items():
            res[name].append({**prf(truth, sc >= threshold), 'threshold': threshold})
        print(f'{subset} seed {seed} fold {k}: ' + json.dumps({n: {a: round(b, 4) if isinstance(b, float) else b
                                                                 for a, b in r[-1].items()} for n, r in res.items()})
              + f' t={time.time() - t0:.0f}s', flush=True)
    print(f'SUMMARY {subset} seed {seed}: truncations of held-out engines, precision / recall: mean, worst fold; pooled over folds')
    for name, rows in res.items():
        p, r = np.array([x['precision'] for x in rows]), np.array([x['recall'] for x in rows])
        fp, fn, pos = sum(x['fp'] for x in rows), sum(x['fn'] for x in rows), sum(x['positives'] for x in rows)
        tp = pos - fn
        print(f'{name:8s} P mean {p.mean():.4f} worst {p.min():.4f}  R mean {r.mean():.4f} worst {r.min():.4f}  '
              f'all folds: P {tp / (tp + fp):.4f} R {tp / pos:.4f} (fp {fp}, fn {fn}, positives {pos})  '
              f'P>=0.96 in {int((p >= 0.96).sum())}/5 folds')
    Path(f'res_status_threshold_{subset}_{seed}.json').write_text(json.dumps(res, indent=1))


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'FD002', int(sys.argv[2]) if len(sys.argv) > 2 else 42)
