"""Accounts: who may sign in and with which roles.

- The Django admin's user, group, permission and API-token pages are for superusers only
  (admin.py): a maintainer is staff for the catalogue's admin pages, and with `auth.change_user`
  it could otherwise make itself superuser or read every user's token.
- Maintainers manage users' roles on a page of ours (/accounts/roles/), which can change
  group membership and nothing else.
- Sign-in is throttled per user name and client address (throttle.py, backends.py).
"""
