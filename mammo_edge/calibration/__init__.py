"""``mammo-edge calibrate``: a shipped model fitted to a site's labelled images, network unchanged.

A site scores its own labelled mammograms once with a model; calibration refits what follows
the network (the stacking head, if the model has one, and the ``triage`` and ``balanced``
thresholds, paired and single-view) and writes a model folder that ``--model DIR`` loads in
every verb, with the figures before and after. The parts, one step each:

- :mod:`.site`: the labelled images (the one labels reader), patients and folds, the refusal
  of too little data;
- :mod:`.fitting`: the heads (:func:`mammo_edge.model.logistic.fit_head`) and thresholds, per
  scoring mode;
- :mod:`.figures`: before (as shipped) and after (cross-fitted by patient), with intervals;
- :mod:`.record`: the ``calibration`` block the model carries, and its words;
- :mod:`.run`: one calibration, records in, :class:`~.run.CalibratedModel` out;
- :mod:`.folder`: the model folder, written whole or not at all.

docs/calibrate.md describes the command.
"""
