"""kreg.tuning: Keras Tuner studies of dropout rate x batch norm x block order.

```python
from kreg import tuning

study = tuning.Study(model="mlp", dataset="digits", directory="runs/x", seeds=5)
rows = study.run()                 # resumable; distributed via Keras Tuner's chief/workers
print(tuning.recommend(rows))      # verdict with a 95% interval over paired seeds
tuning.report(rows, "runs/x")      # report.md, results.csv/json, PNG plots
```

How data flows: `SearchSpace` (space.py) -> an executor (packing.py, trials.py,
distributed.py) -> the ledger (ledger.py, rows per schema.py) ->
`recommend` (recommendation.py) -> `report` (reporting.py).
"""

from kreg.tuning.directory import StudyConflictError
from kreg.tuning.directory import StudyLockedError
from kreg.tuning.evidence_suite import Evidence
from kreg.tuning.evidence_suite import evidence
from kreg.tuning.hypermodel import RegularizationHyperModel
from kreg.tuning.ledger import Results
from kreg.tuning.ledger import StudyWriteError
from kreg.tuning.ledger import record_run
from kreg.tuning.ledger import results
from kreg.tuning.recommendation import Recommendation
from kreg.tuning.recommendation import recommend
from kreg.tuning.reporting import report
from kreg.tuning.space import SearchSpace
from kreg.tuning.study import Study

__all__ = [
    "Evidence",
    "RegularizationHyperModel",
    "Recommendation",
    "Results",
    "SearchSpace",
    "Study",
    "StudyConflictError",
    "StudyLockedError",
    "StudyWriteError",
    "evidence",
    "recommend",
    "record_run",
    "report",
    "results",
]
