{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "sellthrough.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name of the shared objects (ConfigMap, Secret, ServiceMonitor). */}}
{{- define "sellthrough.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of one service's objects. Call with (dict "root" $ "name" <service>). */}}
{{- define "sellthrough.componentName" -}}
{{- printf "%s-%s" (include "sellthrough.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sellthrough.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "sellthrough.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sellthrough
{{- end -}}

{{/* Labels that select one service's pods. Call with (dict "root" $ "name" <service>). */}}
{{- define "sellthrough.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sellthrough.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* All labels of one service's objects. Call with (dict "root" $ "name" <service>). */}}
{{- define "sellthrough.componentLabels" -}}
{{ include "sellthrough.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "sellthrough.secretName" -}}
{{- if .Values.secret.existingSecret -}}
{{- .Values.secret.existingSecret -}}
{{- else -}}
{{- include "sellthrough.fullname" . -}}
{{- end -}}
{{- end -}}

{{- define "sellthrough.kafkaBootstrapServers" -}}
{{- if .Values.kafka.bootstrapServers -}}
{{- .Values.kafka.bootstrapServers -}}
{{- else if .Values.kafka.strimzi.enabled -}}
{{- printf "%s-kafka-bootstrap.%s.svc:9092" .Values.kafka.strimzi.clusterName (default .Release.Namespace .Values.kafka.strimzi.namespace) -}}
{{- else -}}
{{- fail "kafka.bootstrapServers is required (host:port[,host:port...] of your Kafka), unless kafka.strimzi.enabled" -}}
{{- end -}}
{{- end -}}

{{/* The topics as "name:partitions name:partitions ...", the form the topic Job reads. */}}
{{- define "sellthrough.topicSpecs" -}}
{{- $specs := list -}}
{{- range .Values.topics -}}
{{- $specs = append $specs (printf "%s:%d" .name (int .partitions)) -}}
{{- end -}}
{{- join " " $specs -}}
{{- end -}}

{{/* kafka.topicConfig as kafka-topics.sh arguments. */}}
{{- define "sellthrough.topicConfigArgs" -}}
{{- $args := list -}}
{{- range $key, $value := .Values.kafka.topicConfig -}}
{{- $args = append $args (printf "--config %s=%v" $key $value) -}}
{{- end -}}
{{- join " " $args -}}
{{- end -}}
