"""Forgotten passwords, through the real pages: the login page links to the reset form, the
e-mail carries a single-use link, the new password works in the login form, and the pages
say the same whether or not the address is an account's."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.test import Client

from api.models import ApiToken
from api.services.api_tokens import api_token_create
from tests.api.test_security_accounts import PASSWORD, web_login

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "synthetic-Reset-pass-7"
LINK = re.compile(r"https?://\S+/password/reset/\S+/\S+/")


@pytest.fixture
def account():
    user = get_user_model().objects.create_user(
        username=f"reset.{uuid.uuid4().hex[:8]}",
        email="reset.someone@synthetic.invalid",
        password=PASSWORD,
    )
    # Ids come again after a rollback: a count kept in the cache by an earlier test is not
    # this account's.
    cache.delete(f"parcours:password-reset:account:{user.pk}")
    return user


def browser() -> Client:
    # Each test asks from an address of its own: the per-address rate is not shared.
    return Client(
        enforce_csrf_checks=True,
        REMOTE_ADDR=f"10.{uuid.uuid4().int % 250}.0.{uuid.uuid4().int % 250}",
    )


def ask(client: Client, email: str):
    form = client.get("/password/reset/")
    assert form.status_code == 200
    return client.post(
        "/password/reset/",
        {"email": email, "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )


def set_new(client: Client, link: str, password: str = NEW_PASSWORD):
    page = client.get(link, follow=True)
    assert page.status_code == 200
    form_url = page.redirect_chain[-1][0] if page.redirect_chain else link
    return client.post(
        form_url,
        {"new_password1": password, "new_password2": password,
         "csrfmiddlewaretoken": client.cookies["csrftoken"].value},
    )  # fmt: skip


def test_the_login_page_links_to_the_reset_form():
    page = Client().get("/login/")

    assert 'href="/password/reset/"' in page.content.decode()


def test_a_forgotten_password_is_reset_from_the_e_mailed_link_and_the_new_one_logs_in(account):
    client = browser()

    sent = ask(client, "reset.someone@synthetic.invalid")

    assert sent.status_code == 302
    assert sent["Location"] == "/password/reset/sent/"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["reset.someone@synthetic.invalid"]
    assert mail.outbox[0].subject == "Parcours : choisissez un nouveau mot de passe"
    assert account.get_username() in str(mail.outbox[0].body)
    found = LINK.search(str(mail.outbox[0].body))
    assert found is not None, mail.outbox[0].body
    link = found[0]

    done = set_new(client, link)

    assert done.status_code == 302
    assert done["Location"] == "/password/reset/done/"
    web_login(account, NEW_PASSWORD)  # the real login form
    refused = Client().post("/login/", {"username": account.get_username(), "password": PASSWORD})
    assert refused.status_code == 200  # the old password no longer works
    # Used once: the same link no longer sets a password.
    again = Client().get(link, follow=True)
    assert again.context["validlink"] is False


def test_the_reset_revokes_the_account_s_api_tokens(account):
    api_token_create(user=account, name="script", actor=account, lifetime=None)
    client = browser()
    ask(client, "reset.someone@synthetic.invalid")
    link = LINK.search(str(mail.outbox[0].body))[0]  # type: ignore[index]

    set_new(client, link)

    assert not ApiToken.objects.filter(user=account).exists()


def test_an_unknown_address_gets_the_same_answer_and_no_e_mail(account):
    known = ask(browser(), "reset.someone@synthetic.invalid")
    unknown = ask(browser(), "nobody@synthetic.invalid")

    assert unknown.status_code == known.status_code == 302
    assert unknown["Location"] == known["Location"]
    assert len(mail.outbox) == 1  # the known address's only
    page = browser().get(unknown["Location"])
    assert "Si un compte utilise cette adresse" in page.content.decode()


def test_the_e_mail_follows_the_page_s_language(account):
    client = browser()
    client.cookies["django_language"] = "en"

    ask(client, "reset.someone@synthetic.invalid")

    assert mail.outbox[0].subject == "Parcours: choose a new password"


def test_an_account_gets_a_few_e_mails_at_most_and_the_page_does_not_change(account, settings):
    settings.PASSWORD_RESET_RATE_ACCOUNT = "2/hour"

    answers = [ask(browser(), "reset.someone@synthetic.invalid") for _ in range(4)]

    assert [a.status_code for a in answers] == [302] * 4
    assert len(mail.outbox) == 2


def test_too_many_requests_from_one_address_are_refused_with_429(settings):
    settings.PASSWORD_RESET_RATE_ADDRESS = "2/hour"
    client = browser()

    answers = [ask(client, f"n{i}@synthetic.invalid").status_code for i in range(3)]

    assert answers == [302, 302, 429]


def test_a_tampered_link_is_refused(account):
    client = browser()
    ask(client, "reset.someone@synthetic.invalid")
    link = LINK.search(str(mail.outbox[0].body))[0]  # type: ignore[index]

    page = client.get(link[:-3] + "xx/", follow=True)

    assert page.context["validlink"] is False
    account.refresh_from_db()
    assert account.check_password(PASSWORD)
