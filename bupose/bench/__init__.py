"""``bupose bench``: where the time and memory of the AE test pipeline go (issue 12).

``measure`` holds the machine-level probes (median timer, convolution peak, peak RSS, start-up
of the command); ``pipeline`` times one predictor stage by stage on a list of images.
"""
