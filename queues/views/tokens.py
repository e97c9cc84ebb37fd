"""Personal API tokens: each user makes, lists and revokes their own; admins see and revoke anyone's."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import tokens
from ..forms.tokens import TokenForm
from ..models import ApiToken

can_manage_all = permission_required("queues.manage_all_tokens", raise_exception=True)


@never_cache
@require_http_methods(["GET", "POST"])
def token_list(request):
    """The user's own tokens; a new one is shown on this answer only, never again."""
    form = TokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        created = tokens.token_create(owner=request.user, name=form.cleaned_data["name"],
                                      expires_at=form.expires_at())
        form = TokenForm()
    return render(request, "queues/tokens.html", {"form": form, "created": created,
                                                  "tokens": tokens.tokens_of(user=request.user)})


@require_POST
def token_revoke(request, pk: int):
    token = get_object_or_404(ApiToken, pk=pk)
    own = token.owner_id == request.user.pk
    if not own and not request.user.has_perm("queues.manage_all_tokens"):
        raise Http404("No such token")  # someone else's token is not even named
    if tokens.token_revoke(token=token, by=request.user):
        messages.success(request, f"“{token.name}” ({token.prefix}…) is revoked: it is refused from now on.")
    return redirect("queues:tokens" if own else "queues:tokens_all")


@require_GET
@can_manage_all
def token_list_all(request):
    return render(request, "queues/tokens_all.html", {"tokens": tokens.tokens_all()[:500]})
