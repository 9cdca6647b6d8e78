#!/usr/bin/env bash
# One-time project setup for a first deploy (docs/deploy-cloud-run.md walks through it): the APIs, the replica bucket,
# the Artifact Registry repository, the METRICS_TOKEN secret, and two service accounts with least privilege:
#   sqlite-api           the service's runtime identity: roles/storage.objectUser on the replica bucket only (Litestream
#                        lists, reads, writes and deletes objects; the writer lease writes lease.json), and
#                        roles/secretmanager.secretAccessor on the METRICS_TOKEN secret only.
#   sqlite-api-deployer  what cloudbuild.yaml runs as: roles/run.developer and roles/logging.logWriter on the project,
#                        roles/artifactregistry.writer on the repository only, roles/iam.serviceAccountUser on the
#                        runtime account only, and read access to the bucket `gcloud builds submit` uploads source to.
#   sqlite-api-reader    (FOLLOWERS=1 only) read followers' identity (docs/followers.md): roles/storage.objectViewer on
#                        the replica bucket only (they never write to it), roles/run.invoker on the writer service (their
#                        forwarded writes carry an ID token), the METRICS_TOKEN secret; the deployer may act as it.
# Safe to re-run: what exists is kept, bindings are idempotent. Needs roles/owner (or the admin roles for IAM,
# Service Usage, Storage, Artifact Registry and Secret Manager) for whoever runs it.
#   PROJECT_ID=my-project REGION=europe-west1 BUCKET=my-project-sqlite-replica bash deploy/cloudrun/setup.sh
set -euo pipefail

: "${PROJECT_ID:?set PROJECT_ID}" "${REGION:?set REGION}" "${BUCKET:?set BUCKET}"
REPO="${REPO:-sqlite-api}"
RUNTIME="sqlite-api@${PROJECT_ID}.iam.gserviceaccount.com"
DEPLOYER="sqlite-api-deployer@${PROJECT_ID}.iam.gserviceaccount.com"
SECRET="sqlite-api-metrics-token"
gcloud config set project "$PROJECT_ID"

echo "== APIs"
gcloud services enable run.googleapis.com artifactregistry.googleapis.com cloudbuild.googleapis.com \
  iam.googleapis.com storage.googleapis.com secretmanager.googleapis.com

echo "== replica bucket gs://$BUCKET (same region as the service; no soft delete: Litestream deletes many small files)"
gcloud storage buckets describe "gs://$BUCKET" >/dev/null 2>&1 ||
  gcloud storage buckets create "gs://$BUCKET" --location="$REGION" \
    --uniform-bucket-level-access --public-access-prevention --soft-delete-duration=0

echo "== Artifact Registry repository $REPO"
gcloud artifacts repositories describe "$REPO" --location="$REGION" >/dev/null 2>&1 ||
  gcloud artifacts repositories create "$REPO" --repository-format=docker --location="$REGION"

echo "== service accounts"
gcloud iam service-accounts describe "$RUNTIME" >/dev/null 2>&1 ||
  gcloud iam service-accounts create sqlite-api --display-name="sqlite-api (Cloud Run runtime)"
gcloud iam service-accounts describe "$DEPLOYER" >/dev/null 2>&1 ||
  gcloud iam service-accounts create sqlite-api-deployer --display-name="sqlite-api deployer (Cloud Build)"

echo "== runtime: the replica bucket only"
gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
  --member="serviceAccount:$RUNTIME" --role=roles/storage.objectUser

echo "== METRICS_TOKEN secret (random), readable by the runtime account only"
if ! gcloud secrets describe "$SECRET" >/dev/null 2>&1; then
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | gcloud secrets create "$SECRET" --replication-policy=automatic --data-file=-
fi
gcloud secrets add-iam-policy-binding "$SECRET" \
  --member="serviceAccount:$RUNTIME" --role=roles/secretmanager.secretAccessor

echo "== deployer: deploy Cloud Run services, write build logs, push to this repository, act as the runtime account"
for role in roles/run.developer roles/logging.logWriter; do
  gcloud projects add-iam-policy-binding "$PROJECT_ID" --member="serviceAccount:$DEPLOYER" --role="$role" --condition=None
done
gcloud artifacts repositories add-iam-policy-binding "$REPO" --location="$REGION" \
  --member="serviceAccount:$DEPLOYER" --role=roles/artifactregistry.writer
gcloud iam service-accounts add-iam-policy-binding "$RUNTIME" \
  --member="serviceAccount:$DEPLOYER" --role=roles/iam.serviceAccountUser
# `gcloud builds submit` uploads the source to gs://PROJECT_ID_cloudbuild; the build reads it as the deployer.
SOURCE_BUCKET="gs://${PROJECT_ID}_cloudbuild"
gcloud storage buckets describe "$SOURCE_BUCKET" >/dev/null 2>&1 ||
  gcloud storage buckets create "$SOURCE_BUCKET" --location="$REGION" --uniform-bucket-level-access
gcloud storage buckets add-iam-policy-binding "$SOURCE_BUCKET" \
  --member="serviceAccount:$DEPLOYER" --role=roles/storage.objectViewer

if [ "${FOLLOWERS:-0}" = "1" ]; then
  READER="sqlite-api-reader@${PROJECT_ID}.iam.gserviceaccount.com"
  echo "== read followers: their own account, the replica bucket read-only"
  gcloud iam service-accounts describe "$READER" >/dev/null 2>&1 ||
    gcloud iam service-accounts create sqlite-api-reader --display-name="sqlite-api read followers (Cloud Run runtime)"
  gcloud storage buckets add-iam-policy-binding "gs://$BUCKET" \
    --member="serviceAccount:$READER" --role=roles/storage.objectViewer
  gcloud secrets add-iam-policy-binding "$SECRET" \
    --member="serviceAccount:$READER" --role=roles/secretmanager.secretAccessor
  gcloud iam service-accounts add-iam-policy-binding "$READER" \
    --member="serviceAccount:$DEPLOYER" --role=roles/iam.serviceAccountUser
  # Followers forward writes to the writer service with an ID token: they need to invoke it (it exists after the
  # first deploy; re-run this script then).
  if gcloud run services describe sqlite-api --region="$REGION" >/dev/null 2>&1; then
    gcloud run services add-iam-policy-binding sqlite-api --region="$REGION" \
      --member="serviceAccount:$READER" --role=roles/run.invoker
  else
    echo "the writer service sqlite-api does not exist yet: deploy it, then re-run this script with FOLLOWERS=1"
  fi
fi

echo "done: now  gcloud builds submit --config cloudbuild.yaml --substitutions=_REGION=$REGION,_BUCKET=$BUCKET"
