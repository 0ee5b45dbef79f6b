"""Compare two runs step by step: ``records`` (what a comparison measures), ``tolerance`` (the written error
model), ``envelope`` (the measured float32 envelope), ``comparator`` (structure, then values, stage by
stage), ``files`` (two trace files).
"""
