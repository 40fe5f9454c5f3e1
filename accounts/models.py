from __future__ import annotations

from django.db import models


class LoginFailure(models.Model):
    """Failed sign-ins of one user name from one client address (accounts.throttle).

    Kept in the database rather than the cache: the web processes share it, and the embedded
    default has no shared cache.
    """

    username = models.CharField(max_length=150)
    address = models.CharField(max_length=64)
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["username", "address"], name="login_failure_once")]

    def __str__(self) -> str:
        return f"{self.username}@{self.address}: {self.failures}"
