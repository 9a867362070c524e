"""Retention: enforcement of the §8.3.2 floors, legal holds, coverage audit and compliance reports.

The tier policy itself (``retain_until``) lives in :mod:`jifang.tiers` so the recorder locks every segment
correctly from the first upload; this part will hold the scheduler, audits and reports (issue #3)."""
