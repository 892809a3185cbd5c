"""After the estimators: the pose prior (:mod:`~tracker.post.prior`), the masked joint refiner
(:mod:`~tracker.post.refiner`) and One Euro smoothing (:mod:`~tracker.post.one_euro`,
:mod:`~tracker.post.smoothing`), as pipeline stages."""
