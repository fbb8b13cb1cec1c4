from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET


@require_GET
def deal_list_view(request: HttpRequest) -> TemplateResponse:
    return TemplateResponse(request, "deals/list.html", {})
