#!/usr/bin/env bash
# Creates what push-triggered updates need, in the account and region that
# hold the ECR repositories: an SQS queue (with a dead-letter queue that
# takes a message after 5 failed passes), an EventBridge rule matching
# successful ECR pushes (event-pattern.json), the queue policy that lets the
# rule send (queue-policy.json), and the rule's target. Prints the queue URL
# for imagebutler's events.sqs.queueURL. Safe to run again.
#
#   AWS_REGION=us-east-2 ./setup.sh [queue-name] [rule-name]
#   ENDPOINT=http://127.0.0.1:5000 ./setup.sh        # moto or LocalStack
#
# Needs the aws CLI (v1 or v2) and credentials that may create SQS queues
# and EventBridge rules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
queue=${1:-imagebutler-ecr-events}
rule=${2:-imagebutler-ecr-push}
: "${AWS_REGION:=${AWS_DEFAULT_REGION:-}}"
[[ -n $AWS_REGION ]] || { echo "setup.sh: set AWS_REGION" >&2; exit 1; }
export AWS_REGION AWS_DEFAULT_REGION=$AWS_REGION
command -v aws >/dev/null || { echo "setup.sh: needs the aws CLI" >&2; exit 1; }
endpoint=()
[[ -z ${ENDPOINT:-} ]] || endpoint=(--endpoint-url "$ENDPOINT")
awsq() { aws "${endpoint[@]}" --output text "$@"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# json_string FILE: the file's JSON as one escaped JSON string.
json_string() { tr -d '\n' <"$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }

dlq_url=$(awsq sqs create-queue --queue-name "$queue-dlq" --query QueueUrl)
dlq_arn=$(awsq sqs get-queue-attributes --queue-url "$dlq_url" --attribute-names QueueArn --query Attributes.QueueArn)
queue_url=$(awsq sqs create-queue --queue-name "$queue" --query QueueUrl)
queue_arn=$(awsq sqs get-queue-attributes --queue-url "$queue_url" --attribute-names QueueArn --query Attributes.QueueArn)

rule_arn=$(awsq events put-rule --name "$rule" --event-pattern "file://$here/event-pattern.json" \
  --description "ECR pushes, for imagebutler" --query RuleArn)

sed -e "s|QUEUE_ARN|$queue_arn|" -e "s|RULE_ARN|$rule_arn|" "$here/queue-policy.json" >"$tmp/policy.json"
printf '{"deadLetterTargetArn":"%s","maxReceiveCount":"5"}' "$dlq_arn" >"$tmp/redrive.json"
printf '{"Policy": "%s", "RedrivePolicy": "%s", "MessageRetentionPeriod": "86400"}' \
  "$(json_string "$tmp/policy.json")" "$(json_string "$tmp/redrive.json")" >"$tmp/attributes.json"
awsq sqs set-queue-attributes --queue-url "$queue_url" --attributes "file://$tmp/attributes.json"

failed=$(awsq events put-targets --rule "$rule" --targets "Id=imagebutler-queue,Arn=$queue_arn" --query FailedEntryCount)
[[ $failed == 0 ]] || { echo "setup.sh: put-targets failed for $failed target(s)" >&2; exit 1; }

echo "$queue_url"
