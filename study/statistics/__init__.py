"""Pure statistics over the study tables: classification, matched-progress measures, slopes and
permutation tests, selection uncertainty, Kendall tau, simulations and the verdict.

Nothing in this package reads or writes files, draws or formats text for a file;
:mod:`study.report` is the only module that does.
"""
