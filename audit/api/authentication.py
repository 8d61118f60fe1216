from rest_framework import authentication, exceptions

from audit import services


class ApiKeyPrincipal:
    """The request's user when it authenticated with an API key."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key):
        self.key = key
        self.org = key.org
        self.pk = None
        self.username = f"key:{key.prefix}"

    def __str__(self):
        return self.username


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer lens_<prefix>_<secret>`."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <key>'.")
        try:
            plain = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("API key is not valid.") from None
        key = services.api_key_authenticate(plain=plain)
        if key is None:
            raise exceptions.AuthenticationFailed("API key is not valid or has been revoked.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return self.keyword
