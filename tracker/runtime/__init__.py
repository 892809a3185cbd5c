"""What runs the stages: the pipeline (:mod:`~tracker.runtime.pipeline`), the streaming loop with its
capture thread and channels (:mod:`~tracker.runtime.loop`), latency / FPS / drop statistics
(:mod:`~tracker.runtime.stats`) and the filter of native libraries' start-up logs
(:mod:`~tracker.runtime.quiet`)."""
