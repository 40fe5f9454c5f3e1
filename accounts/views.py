from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import services, throttle
from infra.errors import DomainError
from infra.roles import Role, role_required


class ThrottledAuthenticationForm(AuthenticationForm):
    """Says plainly that the account is locked instead of "wrong password" (the backend refuses either way)."""

    def clean(self):
        until = throttle.locked_until(self.data.get("username"), self.request)
        if until is not None:
            minutes = max(1, round((until - timezone.now()).total_seconds() / 60))
            raise ValidationError(
                f"Too many failed sign-ins for this user name. Try again in about {minutes} minute(s).", code="locked"
            )
        return super().clean()


class ThrottledLoginView(LoginView):
    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.has_error(NON_FIELD_ERRORS, "locked"):
            response.status_code = 429
        return response


class RolesForm(forms.Form):
    roles = forms.MultipleChoiceField(choices=[(r.value, r.label) for r in Role], required=False)


@role_required(Role.MAINTAINER)
def roles(request):
    query = (request.GET.get("q") or "").strip()[:150]
    users = get_user_model().objects.filter(is_active=True).prefetch_related("groups").order_by("username")
    if query:
        users = users.filter(username__icontains=query)
    rows = [{"user": u, "roles": {g.name for g in u.groups.all()} & set(services.ROLE_NAMES)} for u in users[:200]]
    return render(
        request,
        "accounts/roles.html",
        {"rows": rows, "role_names": services.ROLE_NAMES, "q": query, "truncated": users.count() > 200},
    )


@require_POST
@role_required(Role.MAINTAINER)
def roles_set(request, user_id: int):
    form = RolesForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown role.")
        return redirect("accounts:roles")
    try:
        services.user_roles_set(actor=request.user, user_id=user_id, roles=form.cleaned_data["roles"])
    except DomainError as exc:
        messages.error(request, exc.message)
        return render(request, "accounts/refused.html", {"message": exc.message}, status=exc.status)
    messages.success(request, "Roles saved.")
    return redirect("accounts:roles")
