"""Check: features of the last row of a truncated engine == features of that cycle computed on the full engine."""
from cm import *
df = load()
cfg = dict(signals=['s2','s3','s4','s7','s11','s12','s15','s17','s20','s21'], windows=(10,30,60,100), stats=('mean','std','slope','min','max'), trend_window=10, ewm_spans=(30,), cycle=True)
Ffull = build_features(df, **cfg)
mx = 0
for u in (1, 17, 55, 99):
    for cut in (31, 77, 128):
        sub = df[(df.unit == u) & (df.cycle <= cut)]
        Ft = build_features(sub, **cfg)
        a = Ft.iloc[-1].to_numpy(); b = Ffull.loc[sub.index[-1]].to_numpy()
        mx = max(mx, float(np.max(np.abs(a - b) / (1 + np.abs(b)))))
print('max relative diff truncated vs full:', mx)
