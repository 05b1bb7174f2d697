"""The demo's admin user: created once, with a first and last name.

Wagtail's account form ("Name and e-mail", on the page where the admin language is
chosen too) requires both names, so a user without them could not save it.
Kept apart from the command so it can be used (and tested) without the demo's pages.
"""

from django.contrib.auth import get_user_model

from example_site import demo


def ensure_admin_user():
    """Create the demo superuser if there is none; give the demo user its names.

    Returns ``(user, created)``; ``user`` is ``None`` when another superuser exists
    and no user has the demo's name.
    """
    user_model = get_user_model()
    created = False
    if not user_model.objects.filter(is_superuser=True).exists():
        user_model.objects.create_superuser(
            demo.ADMIN_USERNAME,
            demo.ADMIN_EMAIL,
            demo.ADMIN_PASSWORD,
            first_name=demo.ADMIN_FIRST_NAME,
            last_name=demo.ADMIN_LAST_NAME,
        )
        created = True
    user = user_model.objects.filter(username=demo.ADMIN_USERNAME).first()
    if user is not None and not (user.first_name and user.last_name):
        user.first_name = user.first_name or demo.ADMIN_FIRST_NAME
        user.last_name = user.last_name or demo.ADMIN_LAST_NAME
        user.save(update_fields=["first_name", "last_name"])
    return user, created
