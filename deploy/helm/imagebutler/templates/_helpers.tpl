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
