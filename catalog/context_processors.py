from infra.roles import Role, user_roles


def roles(request):
    r = user_roles(getattr(request, "user", None))
    return {
        "user_roles": r,
        "is_annotator": Role.ANNOTATOR in r,
        "is_reviewer": Role.REVIEWER in r,
        "is_maintainer": Role.MAINTAINER in r,
        "is_researcher": Role.RESEARCHER in r,
    }
