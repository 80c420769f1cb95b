package main

import (
	"reflect"

	"google.golang.org/protobuf/types/known/structpb"
)

func reflectTypeOfStructpbValue() reflect.Type { return reflect.TypeOf(&structpb.Value{}) }
