"""The portal's home-page recommendations (``GET /api/v1/recommendations/``): the caller's
own account only; ``?device=`` narrows to one of their devices' screen. Thin: parse, call
the selector, render."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.permissions import IsPortalUser
from accounts.selectors import account_primary_for_user
from core.exceptions import NotFound
from subscriptions.models import Device

from ..selectors_recommendations import DEFAULT_LIMIT, MAX_LIMIT, recommendation_list


class RecommendationQuerySerializer(serializers.Serializer):
    device = serializers.IntegerField(required=False, min_value=1,
                                      help_text="One of my active devices: only what its screen can show.")
    limit = serializers.IntegerField(required=False, default=DEFAULT_LIMIT, min_value=1, max_value=MAX_LIMIT)


class RecommendationSerializer(serializers.Serializer):
    title = serializers.IntegerField(source="title.pk", help_text="The catalog title's id (/api/v1/catalog/titles/{id}/).")
    code = serializers.CharField(source="title.code")
    name = serializers.CharField(source="title.title")
    year = serializers.IntegerField(source="title.year", allow_null=True)
    artwork_url = serializers.CharField(source="title.artwork_url")
    kind = serializers.ChoiceField(choices=["SIMILAR", "POPULAR", "NEW"],
                                   help_text="SIMILAR: like a title I watched or bought; POPULAR: watched by many lately; "
                                             "NEW: newest in the catalog, when history says too little.")
    reason = serializers.CharField(help_text='e.g. "Because you watched Limitless", "Popular this week" or "New in the catalog".')
    because = serializers.CharField(source="because.code", allow_null=True, default=None,
                                    help_text="The code of the title it is like (SIMILAR only).")


class RecommendationListView(APIView):
    permission_classes = [IsPortalUser]

    @extend_schema(
        parameters=[RecommendationQuerySerializer],
        responses={200: RecommendationSerializer(many=True),
                   400: OpenApiResponse(description="Invalid input; see error.fields."),
                   401: OpenApiResponse(description="Not authenticated."),
                   403: OpenApiResponse(description="Portal customers only."),
                   404: OpenApiResponse(description="No such device (or not mine, or removed).")},
        summary="Titles recommended to me, best first, each with its reason",
        tags=["recommendations"],
        operation_id="recommendations_list",
    )
    def get(self, request):
        query = RecommendationQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        account = account_primary_for_user(user=request.user)
        if account is None:
            raise NotFound("This login has no account.")
        device = None
        if "device" in query.validated_data:
            device = Device.objects.filter(pk=query.validated_data["device"], account=account, state=Device.State.ACTIVE).first()
            if device is None:
                raise NotFound("No such device on your account.")
        items = recommendation_list(account=account, device=device, limit=query.validated_data["limit"])
        return Response(RecommendationSerializer(items, many=True).data)
