"""Issue 13, "Editors": what a new editor tripped over (unit level; the browser walk is
in tests/browser/test_editor_walk.py)."""

import pytest
from wagtail.admin.forms.account import NameEmailForm

from example_site import demo
from example_site.dropzone.demo_admin import ensure_admin_user

pytestmark = pytest.mark.django_db


# -- 10. the demo admin can save its account form (and so change the admin language) ------


def test_the_demo_admin_user_has_a_first_and_a_last_name():
    user, created = ensure_admin_user()
    assert created
    assert (user.first_name, user.last_name) == (demo.ADMIN_FIRST_NAME, demo.ADMIN_LAST_NAME)
    form = NameEmailForm(
        instance=user,
        data={"first_name": user.first_name, "last_name": user.last_name, "email": user.email},
    )
    assert form.is_valid(), form.errors


def test_an_existing_demo_admin_without_names_gets_them(django_user_model):
    django_user_model.objects.create_superuser(
        demo.ADMIN_USERNAME, demo.ADMIN_EMAIL, demo.ADMIN_PASSWORD
    )
    user, created = ensure_admin_user()
    assert not created
    user.refresh_from_db()
    assert user.first_name and user.last_name
