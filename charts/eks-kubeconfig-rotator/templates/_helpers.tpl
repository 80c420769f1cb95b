{{/* The chart name, overridable. */}}
{{- define "eks-kubeconfig-rotator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of every object. */}}
{{- define "eks-kubeconfig-rotator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- include "eks-kubeconfig-rotator.name" . -}}
{{- end -}}
{{- end -}}

{{- define "eks-kubeconfig-rotator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eks-kubeconfig-rotator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "eks-kubeconfig-rotator.labels" -}}
{{ include "eks-kubeconfig-rotator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: eks-plugin
app.kubernetes.io/part-of: kany8s
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "eks-kubeconfig-rotator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "eks-kubeconfig-rotator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* registry/repository@digest, else registry/repository:tag (tag defaults to appVersion). */}}
{{- define "eks-kubeconfig-rotator.image" -}}
{{- $registry := default .Values.image.registry .Values.global.imageRegistry -}}
{{- $repository := .Values.image.repository -}}
{{- if $registry -}}
{{- $repository = printf "%s/%s" $registry $repository -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "eks-kubeconfig-rotator.imagePullSecrets" -}}
{{- $secrets := concat (.Values.global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) -}}
{{- if $secrets }}
imagePullSecrets:
{{- range $secrets }}
{{- if kindIs "string" . }}
- name: {{ . }}
{{- else }}
- {{ toYaml . | nindent 2 | trim }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The port of a bind address (":8081" → 8081). */}}
{{- define "eks-kubeconfig-rotator.port" -}}
{{- regexReplaceAll "^.*:" . "" -}}
{{- end -}}

{{- define "eks-kubeconfig-rotator.args" -}}
- --leader-elect={{ .Values.args.leaderElect }}
- --metrics-bind-address={{ .Values.args.metricsBindAddress }}
- --metrics-secure={{ .Values.args.metricsSecure }}
- --health-probe-bind-address={{ .Values.args.healthProbeBindAddress }}
- --enable-http2={{ .Values.args.enableHTTP2 }}
{{- with .Values.args.watchNamespace }}
- --watch-namespace={{ . }}
{{- end }}
- --refresh-before={{ .Values.args.refreshBefore }}
- --max-refresh-interval={{ .Values.args.maxRefreshInterval }}
- --failure-backoff={{ .Values.args.failureBackoff }}
{{- end -}}
