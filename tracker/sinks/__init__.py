"""Where results go, never blocking the pipeline: joint exports (:mod:`~tracker.sinks.export`: JSON
Lines, CSV, NPZ), the headless progress log (:mod:`~tracker.sinks.progress`) and the rendered view as a
video (:mod:`~tracker.sinks.video`)."""
