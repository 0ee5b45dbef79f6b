"""Traces: ``stages`` (the order compared), ``summary`` (what a summary keeps of a tensor), ``file`` (written and
read step by step), ``memory`` (whole traces and windows in memory), ``health`` (gradient health series).
"""
