"""Reference engine: decodes a video stream with PyAV, detects people with OpenCV's
HOG detector, evaluates Areas/Masks/DurationThreshold/RepeatAlarmIntervalThreshold and
posts events with a JPEG snapshot. See docs/engine-interface.md."""

__version__ = "1.0.0"
