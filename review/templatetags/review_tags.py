from django import template

register = template.Library()


@register.filter
def ci(bounds) -> str:
    """A confidence interval as "[lo, hi]" with three decimals, or an en dash when undefined."""
    if not bounds or bounds[0] is None or bounds[1] is None:
        return "–"
    return f"[{bounds[0]:.3f}, {bounds[1]:.3f}]"
