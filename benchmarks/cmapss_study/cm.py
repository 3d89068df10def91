"""C-MAPSS FD001 study helpers: causal features, grouped CV, truncated-cut evaluation.
Only train_FD001.txt is read. Test / RUL files are never opened."""
import numpy as np, pandas as pd, xgboost as xgb, time, json, sys

import os
from pathlib import Path

# Only the training file is ever read here: the test engines' answers are for the product's benchmark.
DATA = os.environ.get('CMAPSS_TRAIN', str(Path(__file__).resolve().parents[3] / 'shared' / 'datasets' / 'cmapss-fd001' / 'train_FD001.txt'))
COLS = ['unit', 'cycle', 'setting1', 'setting2', 'setting3'] + [f's{i}' for i in range(1, 22)]
SEED = 42
CAP = 125
H = 30  # status horizon

ALL_SIGNALS = ['setting1', 'setting2', 'setting3'] + [f's{i}' for i in range(1, 22)]


def load():
    df = pd.read_csv(DATA, sep=r'\s+', header=None, names=COLS)
    df = df.sort_values(['unit', 'cycle']).reset_index(drop=True)
    L = df.groupby('unit').cycle.transform('max')
    df['RUL'] = L - df['cycle']
    return df


def nonconstant(df, cols, tol=1e-8):
    """columns with (relative) std > tol, decided on the training data passed in"""
    out = []
    for c in cols:
        s = df[c].std()
        if s > tol * max(1.0, abs(df[c].mean())):
            out.append(c)
    return out


def _roll_engine(X, w):
    """X: (T,S) one engine. Backward rolling over last w cycles, min_periods=1.
    returns mean, std(ddof=1, 0 when n=1), OLS slope per cycle (0 when n=1)."""
    T, S = X.shape
    t = np.arange(T, dtype=float)
    cx = np.vstack([np.zeros((1, S)), np.cumsum(X, 0)])
    cxx = np.vstack([np.zeros((1, S)), np.cumsum(X * X, 0)])
    cxt = np.vstack([np.zeros((1, S)), np.cumsum(X * t[:, None], 0)])
    ct = np.concatenate([[0], np.cumsum(t)])
    ctt = np.concatenate([[0], np.cumsum(t * t)])
    hi = np.arange(1, T + 1)
    lo = np.maximum(0, hi - w)
    n = (hi - lo).astype(float)[:, None]
    sx = cx[hi] - cx[lo]; sxx = cxx[hi] - cxx[lo]; sxt = cxt[hi] - cxt[lo]
    st = (ct[hi] - ct[lo])[:, None]; stt = (ctt[hi] - ctt[lo])[:, None]
    mean = sx / n
    var = np.where(n > 1, (sxx - sx * sx / n) / np.maximum(n - 1, 1), 0.0)
    std = np.sqrt(np.maximum(var, 0))
    vt = stt - st * st / n
    slope = np.where(vt > 0, (sxt - sx * st / n) / np.where(vt > 0, vt, 1), 0.0)
    return mean, std, slope


def build_features(df, signals, windows=(5, 10, 20, 30), stats=('mean', 'std'), trend_window=None,
                   ewm_spans=(), cycle=False, raw=True):
    """Backward-looking features per engine. stats subset of mean,std,slope,min,max.
    trend_window: w -> feature raw - rolling mean(w). All causal (only past cycles)."""
    feats = {}
    parts = []
    for u, g in df.groupby('unit', sort=False):
        X = g[signals].to_numpy(float)
        cols = {}
        if raw:
            for j, s in enumerate(signals):
                cols[s] = X[:, j]
        wset = sorted(set(windows) | ({trend_window} if trend_window else set()))
        for w in wset:
            mean, std, slope = _roll_engine(X, w)
            if w in windows:
                for j, s in enumerate(signals):
                    if 'mean' in stats: cols[f'{s}_mean{w}'] = mean[:, j]
                    if 'std' in stats: cols[f'{s}_std{w}'] = std[:, j]
                    if 'slope' in stats: cols[f'{s}_slope{w}'] = slope[:, j]
            if w == trend_window:
                for j, s in enumerate(signals):
                    cols[f'{s}_trend{w}'] = X[:, j] - mean[:, j]
            if w in windows and ('min' in stats or 'max' in stats):
                gw = g[signals].rolling(w, min_periods=1)
                if 'min' in stats:
                    mn = gw.min().to_numpy()
                    for j, s in enumerate(signals): cols[f'{s}_min{w}'] = mn[:, j]
                if 'max' in stats:
                    mx = gw.max().to_numpy()
                    for j, s in enumerate(signals): cols[f'{s}_max{w}'] = mx[:, j]
        for sp in ewm_spans:
            e = g[signals].ewm(span=sp).mean().to_numpy()
            for j, s in enumerate(signals): cols[f'{s}_ewm{sp}'] = e[:, j]
        if cycle:
            cols['cycle'] = g['cycle'].to_numpy(float)
        parts.append(pd.DataFrame(cols, index=g.index))
    F = pd.concat(parts).loc[df.index]
    return F


def folds(units, k=5, seed=SEED):
    rng = np.random.RandomState(seed)
    u = np.array(sorted(units)); rng.shuffle(u)
    return [u[i::k] for i in range(k)]


def make_cuts(df, units, n_cuts=5, seed=SEED, min_obs=31, max_rul=200):
    """For each engine pick n_cuts RUL-after-cut values r ~ U{1..min(max_rul, L-min_obs)}
    -> index of the last observed row (cycle L-r). Because all features are backward-looking,
    the feature row at cycle L-r equals the feature row computed on the truncated copy."""
    rng = np.random.RandomState(seed)
    idx = []
    for u in sorted(units):
        g = df.index[df.unit == u]
        L = len(g)
        hi = min(max_rul, L - min_obs)
        rs = rng.randint(1, hi + 1, size=n_cuts)
        for r in rs:
            idx.append(g[L - 1 - r])
    return np.array(idx)


def phm(d):
    return float(np.sum(np.where(d < 0, np.exp(-d / 13) - 1, np.exp(d / 10) - 1)))


def reg_metrics(pred, rul):
    d = pred - rul
    return dict(rmse=float(np.sqrt(np.mean(d ** 2))),
                rmse_cap=float(np.sqrt(np.mean((pred - np.minimum(rul, CAP)) ** 2))),
                phm=phm(d))


def cls_metrics(yhat, y):
    tp = int(np.sum(yhat & y)); fp = int(np.sum(yhat & ~y)); fn = int(np.sum(~yhat & y))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return dict(prec=p, rec=r, f1=f, npos=int(y.sum()), npred=int(yhat.sum()))


def summarize(rows, keys):
    out = {}
    for k in keys:
        v = np.array([r[k] for r in rows], float)
        out[k] = (float(v.mean()), float(v.std()))
    return out


def fmt(s):
    return ' '.join(f'{k}={m:.3f}±{sd:.3f}' for k, (m, sd) in s.items())
