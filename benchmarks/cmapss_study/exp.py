"""Experiment runner: grouped 5-fold CV by engine on train_FD001 only.
Regressor (target min(RUL,125)) and classifier (RUL<=30) evaluated at the last observed cycle
of 5 random truncations per held-out engine."""
import numpy as np, pandas as pd, xgboost as xgb, time, json
from cm import *

DF = load()
UNITS = sorted(DF.unit.unique())
FOLDS = folds(UNITS)
CUTS = {i: make_cuts(DF, f) for i, f in enumerate(FOLDS)}
# dense secondary eval: every row with >=31 cycles observed and 1<=RUL<=200
DENSE = (DF.cycle >= 31) & (DF.RUL >= 1) & (DF.RUL <= 200)

REG_BASE = dict(objective='reg:squarederror', eta=0.05, max_depth=4, subsample=0.8, colsample_bytree=0.8,
                min_child_weight=5, nthread=1, tree_method='hist', seed=0, eval_metric='rmse')
CLS_BASE = dict(objective='binary:logistic', eta=0.05, max_depth=4, subsample=0.8, colsample_bytree=0.8,
                min_child_weight=5, nthread=1, tree_method='hist', seed=0, eval_metric='logloss')


def inner_split(train_units, frac=0.2, seed=SEED):
    rng = np.random.RandomState(seed + 1)
    u = np.array(sorted(train_units)); rng.shuffle(u)
    nv = int(round(len(u) * frac))
    return u[nv:], u[:nv]


def row_mask(df, units, rows):
    m = df.unit.isin(units).to_numpy()
    if rows == 'all':
        return m
    if rows == 'rul<=200':  # drop very-early rows of long engines
        return m & (df.RUL <= 200).to_numpy()
    if rows == 'cyc>=10':
        return m & (df.cycle >= 10).to_numpy()
    raise ValueError(rows)


def weights(df, mask, scheme):
    if scheme is None:
        return None
    if scheme == 'engine_equal':  # each engine total weight 1 -> scaled to mean 1
        n = df[mask].groupby('unit').cycle.transform('size').to_numpy()
        w = 1.0 / n
        return w / w.mean()
    raise ValueError(scheme)


def fit(params, F, y, tr, va, w=None, rounds=2000, es=100):
    dtr = xgb.DMatrix(F[tr], label=y[tr], weight=w)
    dva = xgb.DMatrix(F[va], label=y[va])
    b = xgb.train(params, dtr, rounds, evals=[(dva, 'va')], early_stopping_rounds=es, verbose_eval=False)
    return b


def pred(b, F, idx):
    return b.predict(xgb.DMatrix(F[idx]), iteration_range=(0, b.best_iteration + 1))


def run_reg(F, params=None, rows='all', wscheme=None, es=100, tag=''):
    params = {**REG_BASE, **(params or {})}
    Fv = F.to_numpy(np.float32)
    y = np.minimum(DF.RUL.to_numpy(float), CAP)
    rul = DF.RUL.to_numpy(float)
    res = []; allp = []; allr = []
    t0 = time.time()
    for k, test_u in enumerate(FOLDS):
        trn_u = [u for u in UNITS if u not in set(test_u)]
        itr, iva = inner_split(trn_u)
        tr = np.where(row_mask(DF, itr, rows))[0]
        va = np.where(DF.unit.isin(iva).to_numpy())[0]
        w = weights(DF, np.isin(np.arange(len(DF)), tr), wscheme) if wscheme else None
        b = fit(params, Fv, y, tr, va, w, es=es)
        ci = CUTS[k]
        p = pred(b, Fv, ci)
        m = reg_metrics(p, rul[ci])
        # status from regressor thresholded at 30
        m.update({f'regcls_{a}': v for a, v in cls_metrics(p <= H, rul[ci] <= H).items() if a in ('prec', 'rec', 'f1')})
        di = np.where(DENSE.to_numpy() & DF.unit.isin(test_u).to_numpy())[0]
        pd_ = pred(b, Fv, di)
        m['dense_rmse'] = float(np.sqrt(np.mean((pd_ - rul[di]) ** 2)))
        m['dense_rmse_cap'] = float(np.sqrt(np.mean((pd_ - np.minimum(rul[di], CAP)) ** 2)))
        m['iters'] = b.best_iteration + 1
        res.append(m); allp.append(p); allr.append(rul[ci])
    allp = np.concatenate(allp); allr = np.concatenate(allr)
    pooled = reg_metrics(allp, allr)
    s = summarize(res, ['rmse', 'rmse_cap', 'phm', 'dense_rmse', 'dense_rmse_cap', 'regcls_prec', 'regcls_rec', 'regcls_f1', 'iters'])
    out = dict(tag=tag, nfeat=F.shape[1], summary=s, pooled=pooled, secs=time.time() - t0, folds=res,
               pred=allp.tolist(), true=allr.tolist())
    print(f'[REG] {tag} nfeat={F.shape[1]} {fmt(s)} pooledRMSE={pooled["rmse"]:.2f} ({out["secs"]:.0f}s)', flush=True)
    return out


def choose_threshold(p, y, rule, floor=0.96):
    ths = np.unique(np.concatenate([np.linspace(0.01, 0.99, 99), p]))
    best = None; bestv = None
    stats = []
    for t in ths:
        yh = p >= t
        tp = np.sum(yh & y); fp = np.sum(yh & ~y); fn = np.sum(~yh & y)
        pr = tp / (tp + fp) if tp + fp else 1.0
        rc = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * pr * rc / (pr + rc) if pr + rc else 0.0
        stats.append((t, pr, rc, f1))
    S = np.array(stats)
    if rule == 'p0.5':
        return 0.5
    if rule == 'maxf1':
        return float(S[np.argmax(S[:, 3]), 0])
    if rule == 'equal':  # precision == recall
        return float(S[np.argmin(np.abs(S[:, 1] - S[:, 2]) - 1e-6 * S[:, 3]), 0])
    if rule.startswith('precfloor'):  # max recall s.t. precision >= floor (fallback max F1)
        fl = float(rule[len('precfloor'):])
        ok = S[S[:, 1] >= fl]
        if len(ok) == 0:
            return float(S[np.argmax(S[:, 3]), 0])
        ok = ok[np.lexsort((-ok[:, 0], ok[:, 2]))]  # max recall, then highest thr
        return float(ok[-1, 0])
    if rule.startswith('recfloor'):  # max precision s.t. recall >= floor
        fl = float(rule[len('recfloor'):])
        ok = S[S[:, 2] >= fl]
        ok = ok[np.lexsort((ok[:, 0], ok[:, 1]))]
        return float(ok[-1, 0])
    raise ValueError(rule)


RULES = ['p0.5', 'maxf1', 'equal', 'precfloor0.96', 'precfloor0.9', 'recfloor0.96']


def run_cls(F, params=None, spw='auto', drop_rul0=True, thr_rows='dense', tag='', rules=RULES, es=100):
    """binary classifier RUL<=30; threshold chosen on inner validation engines."""
    params = {**CLS_BASE, **(params or {})}
    Fv = F.to_numpy(np.float32)
    rul = DF.RUL.to_numpy(float)
    y = (rul <= H).astype(float)
    res = {r: [] for r in rules}; thr = {r: [] for r in rules}
    aucs = []; iters = []
    t0 = time.time()
    for k, test_u in enumerate(FOLDS):
        trn_u = [u for u in UNITS if u not in set(test_u)]
        itr, iva = inner_split(trn_u)
        trm = DF.unit.isin(itr).to_numpy().copy()
        if drop_rul0: trm &= rul > 0
        tr = np.where(trm)[0]
        va = np.where(DF.unit.isin(iva).to_numpy() & (rul > 0))[0]
        P = dict(params)
        if spw == 'auto':
            P['scale_pos_weight'] = float((y[tr] == 0).sum() / (y[tr] == 1).sum())
        elif spw is not None:
            P['scale_pos_weight'] = spw
        b = fit(P, Fv, y, tr, va, es=es)
        iters.append(b.best_iteration + 1)
        # threshold selection rows on validation engines
        if thr_rows == 'dense':
            vi = np.where(DF.unit.isin(iva).to_numpy() & DENSE.to_numpy())[0]
        else:
            vi = make_cuts(DF, iva, n_cuts=5, seed=SEED + 7)
        pv = pred(b, Fv, vi); yv = rul[vi] <= H
        ci = CUTS[k]; pt = pred(b, Fv, ci); yt = rul[ci] <= H
        from sklearn.metrics import roc_auc_score
        aucs.append(roc_auc_score(yt, pt))
        for r in rules:
            t = choose_threshold(pv, yv, r)
            thr[r].append(t)
            res[r].append(cls_metrics(pt >= t, yt))
    out = dict(tag=tag, nfeat=F.shape[1], secs=time.time() - t0, auc=(float(np.mean(aucs)), float(np.std(aucs))),
               iters=iters, rules={})
    for r in rules:
        s = summarize(res[r], ['prec', 'rec', 'f1'])
        npos = sum(x['npos'] for x in res[r])
        tp = sum(round(x['rec'] * x['npos']) for x in res[r]); npred = sum(x['npred'] for x in res[r])
        out['rules'][r] = dict(summary=s, thr=thr[r], pooled=dict(prec=tp / npred if npred else 0, rec=tp / npos))
        print(f'[CLS] {tag} rule={r:14s} {fmt(s)} pooledP={out["rules"][r]["pooled"]["prec"]:.3f} '
              f'pooledR={out["rules"][r]["pooled"]["rec"]:.3f} thr={np.round(thr[r],3).tolist()}', flush=True)
    print(f'[CLS] {tag} auc={out["auc"][0]:.4f}±{out["auc"][1]:.4f} iters={iters} ({out["secs"]:.0f}s)', flush=True)
    return out
