"""Sources of frame sets: the :class:`~devices.base.Device` protocol and one plain adapter per kind
(webcam, video file, image folder, RealSense live and recordings, NYU depth folders, the synthetic data
engine, the multi-camera rig). Adapters convert to RGB uint8 and depth uint16 mm and raise the
device errors of :mod:`tracker.core.errors`."""
