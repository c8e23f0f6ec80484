"""The alert policy (alert_policy.py), its settings, and its rules a module each: screening
(screen.py), the severity ladder (grade.py), and the grading rules of docs/alert-policy.md."""

from .alert_policy import AlertPolicy
from .grade import Grade, PrincipalContext
from .screen import Screened
from .settings import IgnoreSettings, PolicySettings

__all__ = [
    "AlertPolicy",
    "Grade",
    "IgnoreSettings",
    "PolicySettings",
    "PrincipalContext",
    "Screened",
]
