"""Portal forms. They validate input; the writes happen in the owning app's services."""

from django import forms
from django.contrib.auth import password_validation

from core.roles import Role


class LoginForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    # One message for unknown email, wrong password and inactive account.
    error_message = "Incorrect email or password."


class CodeForm(forms.Form):
    """A TOTP code (6 digits) or a backup code."""

    code = forms.CharField(
        max_length=32,
        label="Code",
        help_text="The 6-digit code from your authenticator app, or a backup code.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autocapitalize": "off",
                "spellcheck": "false",
            }
        ),
    )

    def clean_code(self):
        return "".join(self.cleaned_data["code"].split())


class CurrentPasswordForm(forms.Form):
    """The current password, asked again before a sensitive change (TOTP enrolment)."""

    password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class EmailChangeForm(CurrentPasswordForm):
    new_email = forms.EmailField(max_length=254, label="New email address")

    field_order = ["new_email", "password"]


class ProfileForm(forms.Form):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)


def _password_field(label, autocomplete):
    return forms.CharField(
        label=label,
        strip=False,
        max_length=256,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class NewPasswordForm(forms.Form):
    """A new password typed twice; Django's password validators (against ``user``,
    which may be unsaved) put their messages beside ``new_password``."""

    new_password = _password_field("New password", "new-password")
    new_password_confirm = _password_field("New password again", "new-password")

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        self.fields["new_password"].help_text = "<br>".join(
            password_validation.password_validators_help_texts()
        )

    def clean(self):
        cleaned = super().clean()
        new, again = cleaned.get("new_password"), cleaned.get("new_password_confirm")
        if new and again and new != again:
            self.add_error("new_password_confirm", "The two passwords differ.")
        elif new:
            try:
                password_validation.validate_password(new, self.user)
            except forms.ValidationError as exc:
                self.add_error("new_password", exc)
        return cleaned


class PasswordChangeForm(NewPasswordForm):
    old_password = _password_field("Current password", "current-password")

    field_order = ["old_password", "new_password", "new_password_confirm"]


class SignUpForm(NewPasswordForm):
    """Invitation sign-up: the address is the invitation's."""

    first_name = forms.CharField(max_length=150, label="First name")
    last_name = forms.CharField(max_length=150, label="Last name")

    field_order = ["first_name", "last_name", "new_password", "new_password_confirm"]


class RegisterForm(SignUpForm):
    """Self-registration: the address too."""

    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )

    field_order = ["email", *SignUpForm.field_order]

    def clean(self):
        self.user.email = self.cleaned_data.get("email", "")
        return super().clean()


class PasswordResetRequestForm(forms.Form):
    email = forms.EmailField(
        max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "email"})
    )


class SearchForm(forms.Form):
    q = forms.CharField(max_length=100, required=False, label="Search")


class InviteClientForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Client's email")


class DocumentUploadForm(forms.Form):
    title = forms.CharField(max_length=200, required=False)
    file = forms.FileField()
    owner = forms.ModelChoiceField(
        queryset=None, required=True, label="Client", empty_label="Choose a client"
    )

    def __init__(self, user, clients, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if user.role == Role.CLIENT:
            del self.fields["owner"]  # a client uploads for itself
        else:
            self.fields["owner"].queryset = clients
            self.fields["owner"].label_from_instance = lambda u: (
                f"{u.get_full_name()} <{u.email}>"
                if u.get_full_name() != u.email
                else u.email
            )
