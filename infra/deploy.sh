#!/usr/bin/env bash
# Deploys weatherfunc to Azure: the infrastructure (infra/main.bicep, at
# subscription scope), the deploy package (go run ./cmd/package), the zip
# upload, and a refresh of the Key Vault references. Safe to run again: every
# step converges on the same state.
#
#   infra/deploy.sh [-e ENV_NAME] [-l LOCATION] [--what-if] [--no-entra]
#
#   -e, --env        environment name (default: $AZURE_ENV_NAME or weatherfunc-dev)
#   -l, --location   Azure region with Flex Consumption (default: $AZURE_LOCATION or eastus2)
#   --what-if        show what the deployment would change (az deployment sub what-if) and stop
#   --no-entra       do not create the Entra apps with Graph Bicep; pass API_CLIENT_ID,
#                    API_APP_ID_URI and CALLER_CLIENT_ID of apps made with az ad (docs/DEPLOY.md)
#
# The OpenWeatherMap key is read from $WEATHER_API_KEY when set (never from
# the command line, where other users could see it in the process list) and
# handed to az in a private temporary parameters file. Without it the secret
# already in the vault is kept.
#
# Needs: az (logged in: az login), Go. See docs/DEPLOY.md.
set -euo pipefail

cd "$(dirname "$0")/.."

env_name=${AZURE_ENV_NAME:-weatherfunc-dev}
location=${AZURE_LOCATION:-eastus2}
what_if=false
entra=true
while [ $# -gt 0 ]; do
  case "$1" in
    -e|--env) env_name=$2; shift 2 ;;
    -l|--location) location=$2; shift 2 ;;
    --what-if) what_if=true; shift ;;
    --no-entra) entra=false; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "deploy: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

[[ "$env_name" =~ ^[A-Za-z0-9-]{1,24}$ ]] || { echo "deploy: the environment name must be 1-24 letters, digits or -" >&2; exit 2; }
[[ "$location" =~ ^[a-z0-9]+$ ]] || { echo "deploy: the location must be a region name such as eastus2" >&2; exit 2; }

for tool in az go; do
  command -v "$tool" >/dev/null 2>&1 || { echo "deploy: $tool is not installed" >&2; exit 1; }
done
az account show --query id -o tsv >/dev/null || { echo "deploy: not logged in: run az login" >&2; exit 1; }

key=${WEATHER_API_KEY:-}
if [ -n "$key" ] && ! [[ "$key" =~ ^[A-Za-z0-9_-]{8,128}$ ]]; then
  echo "deploy: WEATHER_API_KEY does not look like an OpenWeatherMap key (letters and digits)" >&2
  exit 1
fi

# The parameters file holds the key: private, and removed on every exit.
params=$(mktemp "${TMPDIR:-/tmp}/weatherfunc-params.XXXXXX")
chmod 600 "$params"
trap 'rm -f "$params"' EXIT
{
  printf '{"$schema":"https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#","contentVersion":"1.0.0.0","parameters":{'
  printf '"environmentName":{"value":"%s"},"location":{"value":"%s"},' "$env_name" "$location"
  printf '"weatherApiKey":{"value":"%s"},"deployEntraApps":{"value":%s}' "$key" "$entra"
  if [ "$entra" = false ]; then
    guid='^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
    [[ "${API_CLIENT_ID:-}" =~ $guid && "${CALLER_CLIENT_ID:-}" =~ $guid ]] ||
      { echo "deploy: with --no-entra set API_CLIENT_ID and CALLER_CLIENT_ID (GUIDs)" >&2; exit 2; }
    [[ "${API_APP_ID_URI:-}" =~ ^[A-Za-z0-9:/._-]*$ ]] || { echo "deploy: API_APP_ID_URI is not a URI" >&2; exit 2; }
    printf ',"apiClientId":{"value":"%s"},"apiAppIdUri":{"value":"%s"},"callerClientId":{"value":"%s"}' \
      "$API_CLIENT_ID" "${API_APP_ID_URI:-}" "$CALLER_CLIENT_ID"
  fi
  printf '}}\n'
} >"$params"
unset key

deployment="weatherfunc-${env_name}"
if [ "$what_if" = true ]; then
  echo "== what-if: $deployment in $location"
  az deployment sub what-if --name "$deployment" --location "$location" \
    --template-file infra/main.bicep --parameters "@$params"
  exit 0
fi

echo "== infrastructure: $deployment in $location"
az deployment sub create --name "$deployment" --location "$location" \
  --template-file infra/main.bicep --parameters "@$params" --output none

output() {
  az deployment sub show --name "$deployment" --query "properties.outputs.$1.value" -o tsv
}
rg=$(output resourceGroupName)
app=$(output appName)
vault=$(output keyVaultName)
echo "resource group $rg, function app $app, key vault $vault"

echo "== package"
go run ./cmd/package -o dist/app.zip

# A new identity's roles (Storage Blob Data Owner on the deployment
# container) take minutes to reach every service: the upload may answer 403
# until then. Retry those, fail at once on anything else.
echo "== upload dist/app.zip"
attempt=1
max_attempts=10
while true; do
  if out=$(az functionapp deployment source config-zip --resource-group "$rg" --name "$app" \
      --src dist/app.zip 2>&1); then
    break
  fi
  if [ "$attempt" -ge "$max_attempts" ] || ! grep -qiE '403|forbidden|authorizationpermissionmismatch' <<<"$out"; then
    echo "$out" >&2
    echo "deploy: the zip upload failed (attempt $attempt)" >&2
    exit 1
  fi
  wait=$((attempt * 15))
  echo "upload refused (403: role assignments still propagating); retrying in ${wait}s ($attempt/$max_attempts)"
  sleep "$wait"
  attempt=$((attempt + 1))
done

# Make the platform re-read every Key Vault reference now (after a first
# deployment or a rotated key) instead of within its own 24 h.
echo "== refresh Key Vault references"
site_id=$(az functionapp show --resource-group "$rg" --name "$app" --query id -o tsv)
az rest --method post \
  --url "${site_id}/config/configreferences/appsettings/refresh?api-version=2022-03-01" --output none ||
  echo "deploy: warning: the Key Vault reference refresh failed; the platform re-reads references within 24 hours" >&2

echo "== done: $(output appUrl)/api/WeatherHttp"
