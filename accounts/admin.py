"""The admin's account pages are superuser-only, whatever model permissions a staff user holds.

A maintainer is staff and, in the demo, holds every model permission so that it can use the
catalogue's admin pages. Django's own UserAdmin lets anyone with `auth.change_user` set
`is_superuser`, groups and permissions — including on itself — and DRF's TokenAdmin lists every
user's API key: either is a way to act as someone else. Role changes go through our page
(accounts.views.roles) instead, which can only change the three role groups.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy


class SuperuserOnlyMixin:
    """Every admin permission hook answers `is_superuser`, ignoring model permissions."""

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser


class SuperuserUserAdmin(SuperuserOnlyMixin, UserAdmin):
    pass


class SuperuserGroupAdmin(SuperuserOnlyMixin, GroupAdmin):
    pass


class SuperuserTokenAdmin(SuperuserOnlyMixin, TokenAdmin):
    pass


for model in (User, Group, TokenProxy, Token):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
admin.site.register(User, SuperuserUserAdmin)
admin.site.register(Group, SuperuserGroupAdmin)
admin.site.register(TokenProxy, SuperuserTokenAdmin)
# Permission has no admin page by default; keep it that way.
assert not admin.site.is_registered(Permission)
