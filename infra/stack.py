"""ClickAggStack: the whole pipeline.

Ingest:      API Gateway -> ingest Lambda -> DynamoDB dedup + clicks Kinesis stream
             (POST /v1/clicks with an API key; public, token per click: POST /v1/public/clicks
             with CORS *, GET /v1/c click links)
Aggregation: clicks stream -> Managed Flink -> aggregates stream -> sink Lambda -> serving
             store (DynamoDB; context `serving_store`: timestream is refused, see Billing)
             <- query Lambda <- GET /v1/... on the same API (IAM auth)
Archive:     clicks stream -> Firehose (Parquet) -> S3 <- Glue table (partition projection)
             <- Athena workgroup + named queries; items refused at ingest -> Firehose (Direct
             PUT, gzip JSON) -> the same bucket's refused/ prefix <- their own Glue table
Billing:     nightly Glue workflow: billing recompute of yesterday from the archive, then its
             reconciliation with the serving store (DynamoDB) -> drift report + metrics +
             summary item read by GET /v1/quality; POST /v1/reconcile?day= starts a run
Edge:        CORS for configured origins (+ the dashboard's; the public POST: *), optional
             WAF on the API stage
Dashboard:   web/dist in a private S3 bucket behind CloudFront (OAC), Cognito sign-in, SigV4
             GETs on the query API (context `dashboard_site`, default on)
Operations:  CloudWatch dashboard + alarms on one encrypted SNS topic (incl. the IVT rate's)
Rebuild:     Step Functions: prepare Lambda -> Managed Flink application `<prefix>-rebuild` (the
             stream job's SQL in batch mode over the archive) -> load Lambdas (Distributed Map)
             -> commit Lambda, into the serving table under a new generation (docs/rebuild.md)
"""
from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from constructs import Construct

from common import public_route
from common.archive import EVENTS

from infra.constructs.aggregates_stream import AggregatesStream
from infra.constructs.aggregator import JOB_GROUP, FlinkAggregator
from infra.constructs.alarms import AggregationAlarms, IngestAlarms
from infra.constructs.analytics import AthenaAnalytics
from infra.constructs.api_cors import API_KEY_HEADERS, SIGV4_HEADERS, ApiCors
from infra.constructs.api_firewall import ApiFirewall
from infra.constructs.archive import RawArchive
from infra.constructs.archive_delivery import ArchiveDelivery
from infra.constructs.billing import NightlyBilling, require_reconciliation
from infra.constructs.buckets import AccessLogsBucket
from infra.constructs.click_stream import ClickStream
from infra.constructs.events_stream import EventsStream
from infra.constructs.dashboard import OperationsDashboard
from infra.constructs.dashboard_site import DashboardSite
from infra.constructs.budget_api import BudgetApi
from infra.constructs.budget_table import BudgetTable
from infra.constructs.dedup_table import DedupTable
from infra.constructs.encryption import Encryption
from infra.constructs.ingest_api import IngestApi
from infra.constructs.click_token_keys import ClickTokenKeys
from infra.constructs.ingest_function import IngestFunction
from infra.constructs.ivt_alarm import IvtRateAlarm
from infra.constructs.query_api import ROUTES as QUERY_ROUTES
from query.routes import BUDGET_ROUTES
from infra.constructs.query_api import QueryApi
from infra.constructs.rebuild import ArchiveRebuild
from infra.constructs.refused_archive import RefusedArchive
from infra.constructs.reconcile_api import ROUTE as RECONCILE_ROUTE
from infra.constructs.reconcile_api import ReconcileApi
from infra.constructs.serving_store import ServingStore
from infra.constructs.sink_function import SinkFunction
from infra.settings import StackSettings


class ClickAggStack(Stack):
    def __init__(self, scope: Construct, id: str, *, settings: StackSettings,
                 **kwargs: Any) -> None:
        # Before anything is built: a serving store the nightly reconciliation cannot read
        # is refused (serving_store=timestream), never deployed without reconciliation.
        require_reconciliation(settings.serving_store)
        super().__init__(scope, id, **kwargs)
        self.settings = settings
        key = Encryption(self, "Encryption", prefix=settings.prefix).key

        # --- ingest ---
        self.stream = ClickStream(self, "Clicks", settings=settings, key=key).stream
        self.events = EventsStream(self, "Events", settings=settings, key=key).stream
        self.table = DedupTable(self, "Dedup", settings=settings, key=key).table
        self.token_keys = ClickTokenKeys(self, "ClickTokenKeys", settings=settings, key=key)
        self.ingest = IngestFunction(self, "IngestFunction", settings=settings, key=key,
                                     table=self.table, stream=self.stream, events=self.events,
                                     token_keys=self.token_keys)
        self.api = IngestApi(self, "IngestApi", settings=settings, key=key,
                             handler=self.ingest.function)
        self.alarms = IngestAlarms(self, "Alarms", prefix=settings.prefix, key=key,
                                   api=self.api.api, function=self.ingest.function,
                                   stream=self.stream, email=settings.alarm_email)
        logs_bucket = AccessLogsBucket(self, "AccessLogs").bucket

        # --- stream aggregation ---
        self.aggregates = AggregatesStream(self, "Aggregates", settings=settings,
                                           key=key).stream
        self.aggregator = FlinkAggregator(self, "Aggregator", settings=settings, key=key,
                                          source=self.stream, sink=self.aggregates,
                                          events=self.events)
        self.serving = ServingStore(self, "Serving", settings=settings, key=key,
                                    logs_bucket=logs_bucket)
        # --- budget lane (docs/budget.md): budgets are truth, apart from the serving view ---
        self.budgets = BudgetTable(self, "Budgets", settings=settings, key=key).table
        self.sink = SinkFunction(self, "Sink", settings=settings, key=key,
                                 stream=self.aggregates, store=self.serving)
        self.query = QueryApi(self, "Query", settings=settings, key=key, store=self.serving,
                              api=self.api.api, v1=self.api.v1, clicks_stream=self.stream)
        self.aggregation_alarms = AggregationAlarms(
            self, "AggregationAlarms", prefix=settings.prefix, topic=self.alarms.topic,
            flink_application_name=self.aggregator.application_name,
            clicks_stream=self.stream, aggregates_stream=self.aggregates,
            sink=self.sink.function, dlq=self.sink.dlq,
            iterator_age_ms=settings.iterator_age_alarm_ms)

        # --- raw archive ---
        self.archive = RawArchive(self, "Archive", settings=settings, key=key,
                                  logs_bucket=logs_bucket)
        self.archive_delivery = ArchiveDelivery(self, "ArchiveDelivery", settings=settings,
                                                key=key, stream=self.stream, archive=self.archive,
                                                topic=self.alarms.topic)
        self.events_archive_delivery = ArchiveDelivery(
            self, "EventsArchiveDelivery", settings=settings, key=key, stream=self.events,
            archive=self.archive, layout=EVENTS, table_name=self.archive.events_table_name,
            name=f"{settings.prefix}-events-archive", topic=self.alarms.topic)
        self.refused_archive = RefusedArchive(self, "RefusedArchive", settings=settings, key=key,
                                              archive=self.archive, producer=self.ingest.function,
                                              topic=self.alarms.topic)

        # --- nightly billing recompute + reconciliation ---
        self.billing = NightlyBilling(self, "Billing", settings=settings, key=key,
                                      logs_bucket=logs_bucket, archive=self.archive,
                                      serving=self.serving, topic=self.alarms.topic,
                                      budgets=self.budgets)
        # --- rebuild from the archive (docs/rebuild.md): the stream job's zip, run per range ---
        self.rebuild = ArchiveRebuild(
            self, "Rebuild", settings=settings, key=key, code=self.aggregator.code,
            job_group=self.aggregator.property_groups[JOB_GROUP], archive=self.archive,
            store=self.serving, logs_bucket=logs_bucket)
        # the named queries read the archive's tables and the billing's (the reports)
        self.analytics = AthenaAnalytics(
            self, "Analytics", settings=settings, key=key, logs_bucket=logs_bucket,
            archive=self.archive, tables={self.archive.table_name: self.archive.table,
                                          self.refused_archive.table_name: self.refused_archive.table,
                                          **self.billing.tables})
        self.budget_api = BudgetApi(self, "BudgetApi", settings=settings, key=key,
                                    budgets=self.budgets, store=self.serving, api=self.api.api,
                                    topic=self.alarms.topic)
        self.reconcile_api = ReconcileApi(self, "ReconcileApi", settings=settings, key=key,
                                          billing=self.billing, store=self.serving, v1=self.api.v1)

        # --- live dashboard (before CORS: its origin is one of the API's CORS origins) ---
        self.dashboard = (DashboardSite(self, "Dashboard", settings=settings, key=key,
                                        api=self.api.api, logs_bucket=logs_bucket)
                          if settings.dashboard_site else None)
        dashboard_origins = [self.dashboard.origin] if self.dashboard else []

        # --- API edge: CORS (configured origins + the dashboard's), optional WAF ---
        self.cors = ApiCors(
            self, "Cors", api=self.api.api, origins=[*settings.cors_origins, *dashboard_origins],
            routes={"/v1/clicks": (["POST"], API_KEY_HEADERS),
                    **{route: (["GET"], SIGV4_HEADERS) for route in QUERY_ROUTES},
                    RECONCILE_ROUTE: (["POST"], SIGV4_HEADERS),
                    **{route: (list(verbs), SIGV4_HEADERS) for route, verbs in BUDGET_ROUTES.items()}},
            functions=[self.ingest.function, self.query.function, self.reconcile_api.function,
                       self.budget_api.function])
        self.firewall = (ApiFirewall(self, "Firewall", settings=settings,
                                     stage=self.api.api.deployment_stage)
                         if settings.waf_enabled else None)

        # --- operations ---
        self.ivt_alarm = IvtRateAlarm(self, "IvtAlarm", settings=settings, topic=self.alarms.topic)
        self.operations = OperationsDashboard(
            self, "Operations", settings=settings, topic=self.alarms.topic, api=self.api.api,
            ingest=self.ingest.function, sink=self.sink.function, query=self.query.function,
            clicks_stream=self.stream, aggregates_stream=self.aggregates,
            flink_application_name=self.aggregator.application_name, billing=self.billing,
            alarms=[*self.alarms.alarms.values(), *self.aggregation_alarms.alarms.values(),
                    *self.refused_archive.alarms.values(), self.archive_delivery.alarm,
                    self.events_archive_delivery.alarm, self.budget_api.alarm],
            firewall=self.firewall, ivt=self.ivt_alarm)

        self._outputs()

    def _outputs(self) -> None:
        CfnOutput(self, "IngestUrl", description="POST clicks here (header x-api-key)",
                  value=self.api.api.url_for_path("/v1/clicks"))
        CfnOutput(self, "PublicIngestUrl", value=self.api.api.url_for_path(public_route.PATH),
                  description="Browsers and apps POST clicks here: no API key, a valid click "
                              "token per click, CORS *")
        CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id,
                  description="aws apigateway get-api-key --include-value --api-key <id>")
        CfnOutput(self, "ClicksStreamName", value=self.stream.stream_name)
        CfnOutput(self, "EventsStreamName", value=self.events.stream_name)
        CfnOutput(self, "DedupTableName", value=self.table.table_name)
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)
        CfnOutput(self, "QueryUrl", value=self.api.api.url_for_path("/v1/top"),
                  description="GET /v1/top, /v1/ads/{ad_id}/metrics, /v1/health (SigV4, "
                              "execute-api:Invoke)")
        CfnOutput(self, "PacingUrl", value=self.api.api.url_for_path("/v1/pacing"),
                  description="POST {\"campaign_ids\": [...]}: serve/throttle/stop per campaign; "
                              "budgets: PUT/GET /v1/campaigns/{campaign_id}/budget (SigV4)")
        CfnOutput(self, "BudgetsTableName", value=self.budgets.table_name)
        CfnOutput(self, "AggregatesStreamName", value=self.aggregates.stream_name)
        CfnOutput(self, "FlinkApplicationName", value=self.aggregator.application_name,
                  description="Start once after the first deploy: aws kinesisanalyticsv2 "
                              "start-application --application-name <this>")
        CfnOutput(self, "ServingStore", value=self.serving.kind)
        for name, value in self.serving.env.items():
            if name != "SERVING_STORE":
                CfnOutput(self, name.title().replace("_", ""), value=value)
        CfnOutput(self, "SinkDlqUrl", value=self.sink.dlq.queue_url)
        CfnOutput(self, "ArchiveBucketName", value=self.archive.bucket.bucket_name)
        CfnOutput(self, "GlueDatabase", value=self.archive.database_name)
        CfnOutput(self, "RefusedDeliveryStreamName", value=self.refused_archive.stream_name,
                  description="Items refused at ingest (s3://<ArchiveBucketName>/refused/clicks/, "
                              "Glue table refused_clicks, named query refused_clicks_by_reason)")
        CfnOutput(self, "AthenaWorkGroup", value=self.analytics.workgroup_name)
        CfnOutput(self, "BillingBucketName", value=self.billing.bucket.bucket_name)
        CfnOutput(self, "BillingWorkflowName", value=self.billing.workflow.ref,
                  description="Nightly; recompute + reconcile a day: POST /v1/reconcile?day="
                              "YYYY-MM-DD (SigV4), or aws glue start-workflow-run --name <this> "
                              "--run-properties day=YYYY-MM-DD")
        CfnOutput(self, "BillingJobName", value=self.billing.billing_job.ref)
        CfnOutput(self, "OperationsDashboardName", value=self.operations.dashboard_name)
        CfnOutput(self, "RebuildStateMachineArn", value=self.rebuild.state_machine.state_machine_arn,
                  description="Rebuild a final range from the archive: aws stepfunctions "
                              "start-execution --state-machine-arn <this> --input "
                              "'{\"start\": \"2026-12-05\", \"end\": \"2026-12-06\"}'")
        CfnOutput(self, "RebuildBucketName", value=self.rebuild.bucket.bucket_name)
