// Package events starts targeted passes between polls: ECR pushes that
// EventBridge delivers to an SQS queue (Queue), git pushes a forge
// delivers to a webhook (Webhook). A Dispatcher coalesces what arrives for
// one repository into one pass and bounds the passes per minute; the poll
// stays authoritative and corrects anything an event missed.
package events
