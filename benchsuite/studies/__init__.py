"""Studies: sweeps of a data axis (training-set size, input resolution, corruption), every point an ordinary job.

A study runs the usual jobs (one per task, data set, pipeline and seed) on data sets *derived* from the chosen
ones: the training split cut down to a nested, stratified subset, every image resampled by a factor, or the test
images corrupted. What an axis does is one registered definition (:class:`benchsuite.studies.axes.Axis`, entry
points ``benchsuite.axes``); a derived data set is opened through the ``study:`` data-set format
(:mod:`benchsuite.studies.derived`), so the planner, the workers (local or on Ray), ``--resume`` and the records
treat a study's point like any other data set. The report turns the points into curves with bootstrap bands and
a crossover (:mod:`benchsuite.studies.crossover`, :mod:`benchsuite.report.study_axes`).

Modules: :mod:`~benchsuite.studies.axes` (the axis contract and registry), :mod:`~benchsuite.studies.builtin`
(``train-size``, ``resolution``, ``corruption``), :mod:`~benchsuite.studies.corruptions` (the corruption families
and their parameters per severity, in one place), :mod:`~benchsuite.studies.subsets` (nested stratified subsets),
:mod:`~benchsuite.studies.derived` (the derived data set and its spec), :mod:`~benchsuite.studies.crossover`
(where the best deep pipeline overtakes the best classical one, with its bootstrap interval).
"""
