{{- define "imagebutler.labels" -}}
app.kubernetes.io/name: imagebutler
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "imagebutler.selector" -}}
app.kubernetes.io/name: imagebutler
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "imagebutler.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "imagebutler.port" -}}
{{- $listen := .Values.config.listen | default ":8080" -}}
{{- $parts := splitList ":" $listen -}}
{{- last $parts -}}
{{- end -}}


{{- define "imagebutler.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default .Release.Name -}}
{{- end -}}

{{/* The config file: config, with cluster.config as its cluster section when
     cluster.enabled (the Leases then live in the release namespace). */}}
{{- define "imagebutler.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- if .Values.cluster.enabled -}}
{{- if hasKey $cfg "cluster" -}}
{{- fail "set the cluster settings under cluster.config, not config.cluster: cluster.enabled adds them" -}}
{{- end -}}
{{- $c := deepCopy (.Values.cluster.config | default dict) -}}
{{- $_ := set $c "namespace" .Release.Namespace -}}
{{- if .Values.cluster.secretName -}}
{{- $_ := set $c "secretFile" "/etc/imagebutler/cluster/key" -}}
{{- end -}}
{{- $_ := set $cfg "cluster" $c -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "imagebutler.replicas" -}}
{{- if .Values.cluster.enabled -}}
{{- if kindIs "invalid" .Values.replicaCount }}3{{ else }}{{ int .Values.replicaCount }}{{ end -}}
{{- else if and (not (kindIs "invalid" .Values.replicaCount)) (ne (int .Values.replicaCount) 1) -}}
{{- fail "replicaCount above 1 needs cluster.enabled: two replicas without Leases would work on every repository both" -}}
{{- else -}}
1
{{- end -}}
{{- end -}}
