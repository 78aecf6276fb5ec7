"""Usage record ingestion for source systems (staff API at /api/v1/usage-records/batch/).

Not for portal customers: the caller is a staff user (or a source system's service user)
holding ``billing.add_usagedetailrecord``.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from ..services.ingestion import udr_ingest


class CanIngestUsage(BasePermission):
    message = "This endpoint is for staff and source systems allowed to add usage records."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff and user.has_perm("billing.add_usagedetailrecord"))


class UsageBatchInSerializer(serializers.Serializer):
    source = serializers.CharField(max_length=32, help_text="The source system, e.g. NAGRA.")
    # Records are validated one by one by the service (a bad record never refuses the batch).
    records = serializers.ListField(child=serializers.JSONField(), max_length=10000,
                                    help_text="Usage records, at most 10,000: {external_id, account (number), product (code), "
                                              "usage_at (ISO 8601 with time zone), optional subscription (number), "
                                              "title (code), device (identifier), channel}.")


class RejectedRecordSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the record in the batch, from 0.")
    reasons = serializers.ListField(child=serializers.CharField())


class UsageBatchOutSerializer(serializers.Serializer):
    accepted = serializers.IntegerField(help_text="Records stored PENDING (rated by the rating workers), reopened ones included.")
    reopened = serializers.IntegerField(help_text="Of those, REJECTED records reopened by a corrected resend.")
    duplicates = serializers.IntegerField(help_text="Records already received from this source: ignored.")
    rejected = RejectedRecordSerializer(many=True)


class UsageRecordBatchView(APIView):
    permission_classes = [CanIngestUsage]

    @extend_schema(
        summary="Submit a batch of usage records from a source system",
        description="Each record is validated on its own; replays are ignored; invalid records naming a known account "
                    "and product are kept REJECTED with their reasons.",
        tags=["usage records"], operation_id="usage_records_batch",
        request=UsageBatchInSerializer,
        responses={200: UsageBatchOutSerializer, 400: OpenApiResponse(description="Malformed batch; see error.fields."),
                   401: OpenApiResponse(description="Not authenticated."),
                   403: OpenApiResponse(description="Not allowed to add usage records.")},
    )
    def post(self, request):
        batch = UsageBatchInSerializer(data=request.data)
        batch.is_valid(raise_exception=True)
        result = udr_ingest(source=batch.validated_data["source"], records=batch.validated_data["records"])
        return Response(UsageBatchOutSerializer(result.as_dict()).data)
