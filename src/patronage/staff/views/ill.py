"""Can this patron use interlibrary loan? The checklist of the staff guide, answered on the patron page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from patronage.resourcesharing import eligibility

from .detail import PatronPageView


class PatronIllView(PatronPageView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(read=True)
        result = eligibility.check_patron(patron)
        duplicates = [
            {"id": pid, "url": reverse("staff:patron-detail", kwargs={"pk": pid})} for pid in result.duplicate_ids
        ]
        context = self.patron_context(patron, "ill") | {
            "result": result,
            "reasons": result.decision.reasons if result.decision else (),
            "duplicates": duplicates,
        }
        return render(request, "staff/patron/ill.html", context)
