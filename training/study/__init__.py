"""The paper's claims at a scale anyone can run: `cocomix-lens study --run DIR --seeds 3`.

    arms.py      what is trained (ARMS: objective + label method) and the study's settings
    runner.py    trains every arm per seed on one data order and budget (resumable)
    stats.py     paired differences over seeds: t-interval, sign test, verdict (pure)
    claims.py    the claims (a)-(h): numbers from the curves and measurements -> verdicts
    measure.py   measurements that need the models: linear probes (h), steering (f)
    report.py    study.json and study.md;  plots.py  figure files (HTML, PNG)
The figures and the verdict table's text are report/study.py's, shared with the app.
"""
