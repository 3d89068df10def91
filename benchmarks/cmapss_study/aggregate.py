"""Aggregate res_final_*.json: 3 partitions x 5 folds = 15 held-out folds per config."""
import json, glob, numpy as np
from exp import RULES
def ms(v): v = np.array(v, float); return f'{v.mean():.3f}±{v.std():.3f}'
for f in sorted(glob.glob('res_final_*.json')):
    R = json.load(open(f)); name = f[10:-5]
    reg = {k: [] for k in ['rmse', 'rmse_cap', 'phm', 'regcls_prec', 'regcls_rec', 'regcls_f1', 'iters']}
    sub = {125: [], 150: []}
    for r in R:
        for fo in r['reg']['folds']:
            for k in reg: reg[k].append(fo[k])
        for lim in sub: sub[lim].append(r['reg'][f'rmse_true<={lim}'])
    print(f'== {name}  ({len(R)} partitions, {len(reg["rmse"])} folds)')
    print('  REG per-fold: ' + ' '.join(f'{k}={ms(v)}' for k, v in reg.items()))
    print('  REG pooled-per-partition rmse(true<=125)=' + ms(sub[125]) + ' rmse(true<=150)=' + ms(sub[150]) +
          ' pooled rmse=' + ms([r['reg']['pooled']['rmse'] for r in R]) + ' pooled rmse_cap=' + ms([r['reg']['pooled']['rmse_cap'] for r in R]))
    for rule in RULES:
        pr = []; rc = []; f1 = []; ppr = []; prc = []
        for r in R:
            s = r['cls']['rules'][rule]
            ppr.append(s['pooled']['prec']); prc.append(s['pooled']['rec'])
        # per fold values are not stored per fold, only summary; use partition summaries
        mp = [r['cls']['rules'][rule]['summary']['prec'][0] for r in R]
        mr = [r['cls']['rules'][rule]['summary']['rec'][0] for r in R]
        sp = [r['cls']['rules'][rule]['summary']['prec'][1] for r in R]
        sr = [r['cls']['rules'][rule]['summary']['rec'][1] for r in R]
        print(f'  CLS {rule:14s} prec/partition={np.round(mp,3).tolist()} (fold sd {np.round(sp,3).tolist()}) '
              f'rec/partition={np.round(mr,3).tolist()} (fold sd {np.round(sr,3).tolist()})')
        # exact 15-fold population mean/std from equal-size groups
        def comb(m, s): m = np.array(m); s = np.array(s); return m.mean(), np.sqrt(np.mean(s**2) + m.var())
        a, b = comb(mp, sp); c, d = comb(mr, sr)
        mf = [r['cls']['rules'][rule]['summary']['f1'][0] for r in R]; sf = [r['cls']['rules'][rule]['summary']['f1'][1] for r in R]
        e, g = comb(mf, sf)
        print(f'      15-fold: P={a:.3f}±{b:.3f} R={c:.3f}±{d:.3f} F1={e:.3f}±{g:.3f}  pooled P={np.round(ppr,3).tolist()} R={np.round(prc,3).tolist()}')
    print('  CLS auc per partition', [round(r['cls']['auc'][0], 4) for r in R])
